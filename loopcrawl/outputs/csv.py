"""CSV output: one header row, then one row per page record or item."""

from __future__ import annotations

import csv
import io
import logging
import os
from typing import Any, ClassVar

import orjson

from ..errors import ConfigError
from .base import PAGE_FIELDS, ByteFile, FileOutput, Role, page_values

log = logging.getLogger("loopcrawl.outputs")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float):
        return str(v)
    return orjson.dumps(v).decode()  # nested items and lists, as JSON


class CsvWriter(FileOutput):
    """Page records or items as CSV (UTF-8, RFC 4180 quoting, ``\\r\\n``).

    Page records have the columns of ``PAGE_COLUMNS``. For items the columns
    are fixed by the first item: its type's declared fields (an ``Item``'s
    or a dataclass's), or a dict's keys. A CSV file has one header, so a key
    that is not a column, and items of another type, are left out with a
    warning (``logging``, once per key and once per type; counted in
    ``ignored``); nested values are written as JSON.

    ``append`` adds rows under the header an existing file has (its columns
    are kept; ``columns``, if given, must be those); ``resume_at`` cuts back to a checkpoint's byte offset, as JSONL.
    """

    format: ClassVar[str] = "csv"
    roles: ClassVar[frozenset[Role]] = frozenset({"records", "items"})
    resumable: ClassVar[bool] = True

    def __init__(self, path: str, *, batch: int = 256, append: bool = False,
                 resume_at: int | None = None, columns: tuple[str, ...] | None = None) -> None:
        self.path = path
        self._batch = batch
        self._file = ByteFile(path, append=append, resume_at=resume_at)
        self._text = io.StringIO()
        self._csv = csv.writer(self._text)
        self._columns: list[str] | None = None
        self._header_written = False
        self._kind = ""
        self._rows = 0
        self._warned: set[str] = set()
        self.count = 0
        self.ignored = 0
        if self._file.regular and self._file.offset:
            try:
                self._columns = self._read_header()
            except BaseException:
                self._file.close()
                raise
            self._header_written = True
            if columns is not None and self._columns != list(columns):
                self._file.close()
                raise ConfigError(f"{path} has other columns ({', '.join(self._columns)}) "
                                  "than this crawl writes: overwrite it (-O) or write "
                                  "another file")

    def _read_header(self) -> list[str]:
        head = os.pread(self._file.fileno(), 1 << 16, 0).decode("utf-8", "replace")
        try:
            rows = list(csv.reader(io.StringIO(head.split("\n", 1)[0].rstrip("\r"))))
        except csv.Error:
            rows = []
        if not rows or not rows[0]:
            raise ConfigError(f"{self.path} has no CSV header to add rows under: "
                              "overwrite it (-O) or write another file")
        return rows[0]

    def _start(self, columns: list[str]) -> list[str]:
        if self._columns is None:
            self._columns = columns
        if not self._header_written:
            self._csv.writerow(self._columns)
            self._header_written = True
        return self._columns

    def write_record(self, record: dict[str, Any]) -> None:
        if not self._header_written:
            self._start(list(PAGE_FIELDS))
        self._row(page_values(record))  # text, numbers and None: the csv module's own str()

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        if not self._kind:
            self._kind = kind
        columns = self._start(list(fields) if fields is not None else list(item))
        if kind != self._kind:
            self._ignore(f"type:{kind}", f"{kind} items (the file holds {self._kind} items)")
            return
        for k in item:
            if k not in columns:
                self._ignore(k, f"the key {k!r} of {kind} items (not a column)")
        self._row([_cell(item.get(c)) for c in columns])

    def _row(self, cells: list[Any]) -> None:
        self._csv.writerow(cells)
        self._rows += 1
        self.count += 1
        if self._rows >= self._batch:
            self.flush()

    def _ignore(self, key: str, what: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: a CSV file has one header (columns: %s); leaving out %s "
                        "(JSONL, JSON and SQLite keep every key)",
                        self.path, ", ".join(self._columns or ()), what)
        self.ignored += 1

    def _take(self) -> bytes:
        data = self._text.getvalue()
        if not data:
            return b""
        self._text.seek(0)
        self._text.truncate()
        self._rows = 0
        return data.encode("utf-8")
