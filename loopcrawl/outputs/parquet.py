"""Parquet output (pyarrow, the optional extra ``loopcrawl[parquet]``): typed columns."""

from __future__ import annotations

import logging
import sys
from typing import Any, ClassVar

import orjson

from ..errors import ConfigError, OutputError
from .base import PAGE_COLUMNS, PAGE_FIELDS, Output, Role, cannot_write, page_values

log = logging.getLogger("loopcrawl.outputs")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError("Parquet output needs pyarrow: pip install 'loopcrawl[parquet]'"
                          ) from None
    return pyarrow


def _page_schema(pa: Any) -> Any:
    types = {"text": pa.string(), "integer": pa.int64(), "real": pa.float64(),
             "timestamp": pa.timestamp("ms", tz="UTC")}
    return pa.schema([pa.field(n, types[t]) for n, t in PAGE_COLUMNS])


def _item_type(pa: Any, values: list[Any]) -> Any:
    """The narrowest Arrow type for a column's first values: bool, int64,
    float64, else string (nested values as JSON text)."""
    seen = [v for v in values if v is not None]
    if seen and all(isinstance(v, bool) for v in seen):
        return pa.bool_()
    if seen and all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return pa.int64()
    if seen and all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen):
        return pa.float64()
    return pa.string()


class ParquetWriter(Output):
    """Page records or items as a Parquet file, one row group per ``batch`` rows.

    Page records have the columns of ``PAGE_COLUMNS``, typed: ``status`` and
    the counts int64, ``elapsed_ms`` float64, ``fetched_at`` a UTC timestamp
    (milliseconds). Items: the columns of the first item's type (declared
    fields, or a dict's keys), each typed by its values in the first row group
    (bool, int64, float64, else string; nested values as JSON text). As in
    CSV, a key that is not a column and items of another type are left out
    with a warning, and so is a later value that does not fit its column.

    A Parquet file is written whole (its index is at the end): it cannot be
    appended to, nor resumed after a kill, and a killed crawl leaves it
    unreadable. Use JSONL, CSV or SQLite for a ``--state`` crawl. It is
    written sequentially, so a pipe or standard output (``-``) takes it too.
    """

    format: ClassVar[str] = "parquet"
    roles: ClassVar[frozenset[Role]] = frozenset({"records", "items"})
    resumable: ClassVar[bool] = False

    def __init__(self, path: str, *, batch: int = 10_000) -> None:
        self._pa = pa = _pyarrow()
        self.path = path
        self._batch = batch
        self._rows: list[list[Any]] = []
        self._schema: Any = None
        self._columns: list[str] = []
        self._kind = ""
        self._warned: set[str] = set()
        self.count = 0
        self.ignored = 0
        self._owned = path != "-"
        try:
            self._fh: Any = open(path, "wb") if self._owned else sys.stdout.buffer  # noqa: SIM115
        except OSError as e:
            raise cannot_write(path, e) from None
        self._writer: Any = None
        self._pq = pa.parquet

    def write_record(self, record: dict[str, Any]) -> None:
        if self._schema is None:
            self._schema = _page_schema(self._pa)
            self._columns = list(PAGE_FIELDS)
        v = page_values(record)
        self._rows.append(v)
        self.count += 1
        if len(self._rows) >= self._batch:
            self.flush()

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        if not self._columns:
            self._kind = kind
            self._columns = list(fields) if fields is not None else list(item)
        if kind != self._kind:
            self._ignore(f"type:{kind}", f"{kind} items (the file holds {self._kind} items)")
            return
        for k in item:
            if k not in self._columns:
                self._ignore(k, f"the key {k!r} of {kind} items (not a column)")
        self._rows.append([item.get(c) for c in self._columns])
        self.count += 1
        if len(self._rows) >= self._batch:
            self.flush()

    def _ignore(self, key: str, what: str, n: int = 1) -> None:
        """Warn once per ``key``; count the ``n`` values (or items) left out."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: a Parquet file has one set of columns (%s); leaving out %s",
                        self.path, ", ".join(self._columns), what)
        self.ignored += n

    def _arrays(self) -> list[Any]:
        pa = self._pa
        cols: list[list[Any]] = [list(c) for c in zip(*self._rows, strict=True)]
        if self._schema is None:  # items: typed by the first row group
            cols = [[v if v is None or isinstance(v, str | int | float) else
                     orjson.dumps(v).decode() for v in c] for c in cols]
            self._schema = pa.schema([pa.field(n, _item_type(pa, list(c)))
                                      for n, c in zip(self._columns, cols, strict=True)])
        arrays = []
        for field, values in zip(self._schema, cols, strict=True):
            if pa.types.is_timestamp(field.type):
                values = [None if v is None else round(v * 1000) for v in values]
            elif pa.types.is_string(field.type):
                values = [v if v is None or isinstance(v, str) else
                          orjson.dumps(v).decode() if not isinstance(v, int | float) else str(v)
                          for v in values]
            try:
                if pa.types.is_integer(field.type) and any(map(_fraction, values)):
                    raise OverflowError  # pyarrow would cut 1.5 to 1 without a word
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                fitted = [_fit(pa, v, field.type) for v in values]
                self._ignore(f"value:{field.name}", f"values of {field.name} that are not "
                             f"{field.type}", fitted.count(None) - values.count(None))
                arrays.append(pa.array(fitted, type=field.type))
        return arrays

    def flush(self) -> None:
        if not self._rows:
            return
        pa = self._pa
        try:
            arrays = self._arrays()
            if self._writer is None:
                self._writer = self._pq.ParquetWriter(self._fh, self._schema)
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        except (OSError, pa.ArrowException) as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self._rows.clear()

    def close(self) -> None:
        pa = self._pa
        try:
            try:
                self.flush()
                if self._writer is None:  # no rows (an item is a row): the page columns
                    self._writer = self._pq.ParquetWriter(self._fh, _page_schema(pa))
                self._writer.close()
            finally:  # the file's own buffer is written here: a full disk shows now
                if self._owned:
                    self._fh.close()
                else:
                    self._fh.flush()
        except (OSError, pa.ArrowException) as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None


def _fraction(v: Any) -> bool:
    """A float an integer column cannot hold as it is (1.5, inf, nan; not 2.0)."""
    return isinstance(v, float) and not v.is_integer()


def _fit(pa: Any, v: Any, typ: Any) -> Any:
    """``v`` if it fits ``typ``, else None (the caller warned)."""
    if pa.types.is_integer(typ) and _fraction(v):
        return None
    try:
        pa.array([v], type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return v
