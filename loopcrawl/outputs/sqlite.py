"""SQLite output: page records in the table ``pages``; items, a table per
item type with a column per field."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any, ClassVar

import orjson

from ..errors import ConfigError, OutputError
from .base import PAGE_COLUMNS, PAGE_FIELDS, Output, Role, is_regular, page_values

# PAGE_COLUMNS' types as SQLite declares them (fetched_at: Unix seconds).
_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "timestamp": "REAL"}
_PAGES = "pages"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(v: Any) -> Any:
    if v is None or isinstance(v, str | int | float):
        return v  # bool is an int: stored as 0/1
    return orjson.dumps(v).decode()  # nested items and lists, as JSON text


class SqliteWriter(Output):
    """Page records or items into an SQLite file, committed in batches of
    ``batch`` rows.

    Page records go to the table ``pages``, with the columns of
    ``PAGE_COLUMNS`` and their declared types. An Item or dataclass type is a table named after the class, with a column
    per declared field; dicts go to the table ``item``, and a key no row had
    before adds a column. Columns have no declared type (SQLite keeps each
    value's own: text, integer, real, NULL); nested values are JSON text.
    With ``append`` an existing file keeps its rows and new ones are added to
    its tables; else the file is replaced. It must be a regular file.

    For a crash-safe crawl (``--state``) the writer is part of each
    checkpoint: ``tell()`` is the last row id of every table, and
    ``resume_at=`` that mark deletes the rows added after it, so each page's
    items are in the file once however often the crawl was killed.
    """

    format: ClassVar[str] = "sqlite"
    roles: ClassVar[frozenset[Role]] = frozenset({"records", "items"})
    resumable: ClassVar[bool] = True

    def __init__(self, path: str, *, batch: int = 500, append: bool = True,
                 resume_at: dict[str, int] | None = None) -> None:
        self.path = path
        self._batch = batch
        if path == "-" or not is_regular(path):
            raise ConfigError(f"cannot write {path}: an SQLite database needs a regular file "
                              "(not standard output, a pipe or a device)")
        if not append and resume_at is None:
            for p in (path, path + "-wal", path + "-shm", path + "-journal"):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise ConfigError(f"cannot overwrite {p}: {e.strerror or e}") from None
        try:
            self._con = sqlite3.connect(path, isolation_level="DEFERRED")
            self._con.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is durable, so a checkpoint of the crawl state
            # never records rows a power cut could take back.
            self._con.execute("PRAGMA synchronous=FULL")
            if resume_at is not None:
                self._cut(resume_at)
        except sqlite3.Error as e:
            raise ConfigError(f"cannot write {path}: {e}") from None
        self._columns: dict[str, list[str]] = {}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._pending = 0
        self._record_sql = ""
        self._light = False
        self.count = 0

    def commit_without_fsync(self) -> None:
        """Commits reach the WAL file without an fsync (``synchronous=NORMAL``):
        they survive the process being killed, not a power cut. For a shared
        crawl's worker, which commits before each batch of acks."""
        try:
            self._con.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self._light = True

    def _table(self, kind: str, names: list[str]) -> list[str]:
        cols = self._columns.get(kind)
        con = self._con
        if cols is None:
            con.execute(f"CREATE TABLE IF NOT EXISTS {_quote(kind)} "
                        f"({', '.join(_quote(n) for n in names) or '_ INTEGER'})")
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({_quote(kind)})")]
            self._columns[kind] = cols
        missing = [n for n in names if n not in cols]
        for n in missing:
            con.execute(f"ALTER TABLE {_quote(kind)} ADD COLUMN {_quote(n)}")
            cols.append(n)
        return cols

    def write_record(self, record: dict[str, Any]) -> None:
        try:
            if not self._record_sql:
                self._con.execute(
                    f"CREATE TABLE IF NOT EXISTS {_PAGES} ("
                    + ", ".join(f"{n} {_SQL_TYPES[t]}" for n, t in PAGE_COLUMNS) + ")")
                self._record_sql = (f"INSERT INTO {_PAGES} ({', '.join(PAGE_FIELDS)}) VALUES "
                                    f"({', '.join('?' * len(PAGE_FIELDS))})")
            self._con.execute(self._record_sql, page_values(record))
        except sqlite3.Error as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self._wrote()

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        names = list(fields) if fields is not None else list(item)
        key = (kind, tuple(names))
        try:
            sql = self._sql.get(key)
            if sql is None:
                self._table(kind, names)
                sql = self._sql[key] = (
                    f"INSERT INTO {_quote(kind)} ({', '.join(_quote(n) for n in names)}) "
                    f"VALUES ({', '.join('?' * len(names))})" if names else
                    f"INSERT INTO {_quote(kind)} DEFAULT VALUES")  # an item with no fields
            self._con.execute(sql, [_value(item.get(n)) for n in names])
        except sqlite3.Error as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self._wrote()

    def _wrote(self) -> None:
        self.count += 1
        self._pending += 1
        if self._pending >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Commit the rows written so far."""
        try:
            self._con.commit()
        except sqlite3.Error as e:
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self._pending = 0

    def tell(self) -> dict[str, int]:
        """The last row id of each table (after ``flush``): where the file ends."""
        try:
            names = [r[0] for r in self._con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'")]
            mark = {}
            for n in names:
                with contextlib.suppress(sqlite3.OperationalError):  # WITHOUT ROWID
                    mark[n] = self._con.execute(
                        f"SELECT coalesce(max(rowid), 0) FROM {_quote(n)}").fetchone()[0]
        except sqlite3.Error as e:
            raise OutputError(f"cannot read {self.path}: {e}") from None
        return mark

    def fsync(self) -> None:
        """Make the commits durable: with synchronous=FULL they are already;
        else a checkpoint syncs the WAL and the database file."""
        if self._light:
            try:
                self._con.execute("PRAGMA wal_checkpoint(FULL)")
            except sqlite3.Error as e:
                raise OutputError(f"cannot write {self.path}: {e}") from None

    def _cut(self, mark: dict[str, int]) -> None:
        """Delete the rows added after ``mark`` (tables made after it: all rows)."""
        con = self._con
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for n in names:
            with contextlib.suppress(sqlite3.OperationalError):  # WITHOUT ROWID
                con.execute(f"DELETE FROM {_quote(n)} WHERE rowid > ?", (mark.get(n, 0),))
        con.commit()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._con.close()
