"""CSV output of items: one header row, one row per item."""

from __future__ import annotations

import csv
import logging
from typing import Any

import orjson

from ..errors import ConfigError, OutputError

log = logging.getLogger("loopcrawl.outputs")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float):
        return str(v)
    return orjson.dumps(v).decode()  # nested items and lists, as JSON


class CsvWriter:
    """Items as CSV (UTF-8, RFC 4180 quoting).

    The columns are fixed by the first item: its type's declared fields, or
    a dict's keys. A CSV file has one header, so items of another type, and
    keys a later dict adds, are left out (counted in ``ignored``, logged
    once); nested values are written as JSON.
    """

    def __init__(self, path: str, *, batch: int = 256) -> None:
        self.path = path
        self._batch = batch
        try:
            self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
        self._csv = csv.writer(self._fh)
        self._columns: list[str] | None = None
        self._kind = ""
        self._rows: list[list[str]] = []
        self.count = 0
        self.ignored = 0

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        if self._columns is None:
            self._kind = kind
            self._columns = list(fields) if fields is not None else list(item)
            self._rows.append(self._columns)
        columns = self._columns
        if kind != self._kind or (fields is None and any(k not in columns for k in item)):
            self._ignore(f"{kind} items" if kind != self._kind else
                         ", ".join(k for k in item if k not in columns))
            if kind != self._kind:
                return
        self._rows.append([_cell(item.get(c)) for c in columns])
        self.count += 1
        if len(self._rows) >= self._batch:
            self.flush()

    def _ignore(self, what: str) -> None:
        if not self.ignored:
            log.warning("%s: one CSV file holds one kind of item, its columns fixed by the "
                        "first (%s); leaving out %s (use SQLite or JSONL for several)",
                        self.path, self._kind, what)
        self.ignored += 1

    def flush(self) -> None:
        try:
            if self._rows:
                self._csv.writerows(self._rows)
                self._rows.clear()
            self._fh.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._fh.close()
