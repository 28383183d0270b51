"""JSON Lines output: one record (or item) per line, written in batches."""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import orjson

from .base import ByteFile, FileOutput, Role


class JsonlWriter(FileOutput):
    """Page records or items as JSON lines; ``path`` "-" is standard output.

    Lines are buffered and written in batches of ``batch`` (one ``write``
    syscall each), and always flushed on ``close()``. With ``gzip`` (a name
    ending in ``.gz``) each batch is one gzip member: ``gzip -d`` and
    ``gzip.open`` read the members as one stream, and a cut at a member's end
    (a resumed crawl's) leaves a valid file.

    ``append``: add to an existing file (else it is emptied). ``resume_at``:
    reopen for a resumed crawl, cut back to that byte offset (the last
    checkpoint), so lines written after it, torn or whole, are dropped and
    written again by the resumed crawl.
    """

    format: ClassVar[str] = "jsonl"
    roles: ClassVar[frozenset[Role]] = frozenset({"records", "items"})
    resumable: ClassVar[bool] = True

    def __init__(
        self,
        path: str,
        *,
        batch: int = 256,
        append: bool = False,
        resume_at: int | None = None,
        gzip: bool | None = None,
    ) -> None:
        self.path = path
        self._batch = batch
        self._buf: list[bytes] = []
        self._gzip = path.endswith(".gz") if gzip is None else gzip
        self._file = ByteFile(path, append=append, resume_at=resume_at)
        self.count = 0

    def write_record(self, record: dict[str, Any]) -> None:
        self._buf.append(orjson.dumps(record))
        self.count += 1
        if len(self._buf) >= self._batch:
            self.flush()

    write = write_record  # the name the engine and older callers use

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        self.write_record(item)

    def _take(self) -> bytes:
        if not self._buf:
            return b""
        self._buf.append(b"")
        data = b"\n".join(self._buf)
        self._buf.clear()
        if self._gzip:  # each flush one gzip member: a file cut at a mark stays valid
            z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
            data = z.compress(data) + z.flush()
        return data


JsonlItems = JsonlWriter  # the older name for items as JSON lines
