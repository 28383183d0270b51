"""JSON output: one array of records (or items), as Scrapy's ``-o x.json`` writes it."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import orjson

from ..errors import ConfigError
from .base import ByteFile, FileOutput, Role

_TAIL = b"\n]\n"


class JsonWriter(FileOutput):
    """Records or items as one JSON array: ``[`` newline, one value a line
    separated by commas, ``]``.

    On a regular file the array is closed after every batch (and the closing
    ``]`` cut off before the next one), so the file is valid JSON after each
    flush: after a normal end, a Ctrl-C, and a kill after the last flush. On a
    pipe the ``]`` comes at ``close()``. ``append`` adds to the array an
    existing file holds; ``resume_at`` (a checkpoint's byte offset, just
    before the closing bracket) cuts back to it, as JSONL does.
    """

    format: ClassVar[str] = "json"
    roles: ClassVar[frozenset[Role]] = frozenset({"records", "items"})
    resumable: ClassVar[bool] = True

    def __init__(self, path: str, *, batch: int = 256, append: bool = False,
                 resume_at: int | None = None) -> None:
        self.path = path
        self._batch = batch
        self._buf: list[bytes] = []
        self.count = 0
        f = self._file = ByteFile(path, append=append, resume_at=resume_at)
        self._tail = False  # the closing bracket is in the file, after f.offset
        self._empty = True  # no value in the array yet
        if f.regular and f.offset:
            try:
                self._reopen(resume_at is not None)
            except BaseException:
                f.close()
                raise
        else:
            f.write(b"[")

    def _reopen(self, resumed: bool) -> None:
        """Go on with the array the file holds: cut its ``]`` (and what follows)."""
        f = self._file
        fd = f.fileno()
        if resumed:  # the mark is where the next value goes: before the bracket
            end = f.offset
        else:
            size = f.offset
            tail = os.pread(fd, min(size, 4096), max(0, size - 4096)).rstrip()
            if not tail.endswith(b"]"):
                raise ConfigError(f"{self.path} does not hold a JSON array (no closing ]): "
                                  "overwrite it (-O) or write another file")
            end = size - (min(size, 4096) - len(tail)) - 1  # cut below, once checked
        head = os.pread(fd, min(end, 4096), max(0, end - 4096)).rstrip()
        if not head:
            raise ConfigError(f"{self.path} does not hold a JSON array: overwrite it (-O)")
        self._empty = head.endswith(b"[")
        f.offset = end - (min(end, 4096) - len(head))
        f.truncate(f.offset)

    def _add(self, data: bytes) -> None:
        self._buf.append(data)
        self.count += 1
        if len(self._buf) >= self._batch:
            self.flush()

    def write_record(self, record: dict[str, Any]) -> None:
        self._add(orjson.dumps(record))

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        self._add(orjson.dumps(item))

    def flush(self) -> None:
        f = self._file
        if f.error is not None:
            raise f.error
        if not self._buf:
            return
        data = (b"\n" if self._empty else b",\n") + b",\n".join(self._buf)
        self._buf.clear()
        self._empty = False
        if self._tail:
            f.truncate(f.offset)
            self._tail = False
        if f.regular:  # one write: the file is an array again as soon as it returns
            f.write(data + _TAIL)
            f.offset -= len(_TAIL)  # the mark stays before the bracket
            self._tail = True
        else:
            f.write(data)

    def close(self) -> None:
        f = self._file
        try:
            if f.error is None:
                self.flush()
                if not self._tail:
                    f.write(_TAIL if not self._empty else b"]\n")
                self.fsync()
        finally:
            f.close()
