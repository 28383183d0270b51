"""The state file itself: its lock, its schema, the checks that refuse a
foreign or corrupt file, and ``StateFile``, which opens it and loads what a
run starts from (counts, the seen set, the outputs' marks).

Every other part of the SQLite frontier (the queue, checkpoints, robots.txt,
what a run records) builds on ``StateFile``; ``status.py`` reads the file
with the same checks and no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import heapq
import json
import os
import sqlite3
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import StateError
from ..seen import SeenSet
from ._rows import SELECT, U64, request_of

if TYPE_CHECKING:
    from ...http import Request

APPLICATION_ID = 0x4C435257  # "LCRW": PRAGMA application_id of a loopcrawl state file
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,       -- discovery order: FIFO within a priority
    fp INTEGER NOT NULL,          -- fingerprint as a signed 64-bit int
    url TEXT NOT NULL,
    depth INTEGER NOT NULL,
    referrer TEXT,
    method TEXT NOT NULL,
    priority INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    meta TEXT,                    -- JSON, NULL when empty
    state INTEGER NOT NULL,       -- 0 queued, 1 done, 2 failed
    error TEXT,                   -- the record's error kind, if any
    spider TEXT,                  -- JSON: a spider's callback names, cb_kwargs, headers...
    body BLOB                     -- a request body (a form's POST), NULL when none
);
-- Requests with a priority (a spider's) are few: they wait in RAM, loaded from here.
CREATE INDEX ranked ON requests (id) WHERE priority != 0 AND state = 0;
CREATE TABLE claims (fp INTEGER PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    queued INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
CREATE TABLE robots (             -- robots.txt as fetched ("": no rules)
    host TEXT PRIMARY KEY,
    fetched_at REAL NOT NULL,     -- Unix time
    body TEXT NOT NULL
) WITHOUT ROWID;
"""


def check_file(path: str, fd: int) -> bool:
    """True if ``path`` is new (empty); raise StateError if it is not SQLite."""
    head = os.pread(fd, 100, 0)
    if not head:
        return True
    if not head.startswith(_SQLITE_MAGIC):
        raise StateError(f"{path} is not a loopcrawl state file (not an SQLite database); "
                         "it was left untouched")
    return False


def check_db(path: str, con: sqlite3.Connection) -> bool:
    """Raise StateError unless ``con`` is a sound loopcrawl state of our schema.

    True if it is an SQLite database without a single table: what a kill
    while creating the state leaves (rolled back), with nothing to protect.
    """
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        if app_id == 0 and not con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return True
        if app_id != APPLICATION_ID:
            raise StateError(f"{path} is an SQLite database of another application, not a "
                             "loopcrawl state file; it was left untouched")
        check = con.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            why = " ".join(check.replace("*** in database main ***", "").split())
            raise StateError(f"{path} is corrupt ({why}); it was left untouched")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as e:
        raise StateError(f"{path} is corrupt or unreadable ({e}); it was left untouched") from None
    version = int(row[0]) if row else None
    if version != SCHEMA_VERSION:
        raise StateError(f"{path} has state schema {version}, this loopcrawl reads "
                         f"{SCHEMA_VERSION}; it was left untouched")
    return False


def read_meta(con: sqlite3.Connection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def read_only(path: str) -> str:
    """``path`` as an SQLite URI opened read-only. Escaped: a ``#``, ``?`` or
    ``%`` in the name is the file's (unescaped, SQLite would open, and create,
    another file: ``crawl#1.db`` read as ``crawl``)."""
    return Path(os.path.abspath(path)).as_uri() + "?mode=ro"


def running_pid(path: str) -> int | None:
    """The pid a running crawl recorded in ``path``, if it can be read."""
    try:
        con = sqlite3.connect(read_only(path), uri=True, timeout=1)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'pid'").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None


def lock(path: str) -> int:
    """Open ``path`` and take its exclusive lock (``flock``: the OS drops it
    when the process dies); the descriptor. StateError if another crawl has it."""
    if os.path.isdir(path):
        raise StateError(f"{path} is a directory, not a state file")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise StateError(f"cannot open {path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pid = running_pid(path)
        who = f" (pid {pid})" if pid else ""
        raise StateError(f"{path} is in use by another crawl{who}; wait for it to end, "
                         "or stop it, before resuming") from None
    return fd


def _create(con: sqlite3.Connection) -> None:
    # One transaction in rollback-journal mode: a kill here leaves an empty file.
    con.execute("BEGIN IMMEDIATE")
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for stmt in _SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema", str(SCHEMA_VERSION)),
        ("created_at", repr(time.time())),
        ("pages", "0"),
    ])
    con.execute("COMMIT")


class StateFile:
    """An open, locked state file and what a run starts from.

    Opening takes an exclusive lock on the file, checks it is a loopcrawl
    state, and loads the counts and the seen set. Raises ``StateError`` if
    the file is foreign, corrupt, or in use by another crawl.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._con: sqlite3.Connection | None = None  # the writer (checkpoints, setup)
        self._reader: sqlite3.Connection | None = None  # leases and robots.txt
        self._lock_fd = lock(self.path)
        # Queued requests with a priority (a spider's): (-priority, row id, request).
        self._ranked: list[tuple[int, int, Request]] = []
        try:
            new = check_file(self.path, self._lock_fd)
            self._open(new)
            self._load_ranked()
        except BaseException:
            self._close_files()
            raise
        # Changes since the last checkpoint, and rows found but not yet
        # committed (leased from RAM until they can be read back from the file).
        self._inserts: list[tuple[int, Request]] = []
        self._acks: list[tuple[int, int, str | None, str]] = []  # rowid, state, error, url
        self._claim_log: list[int] = []
        self._robots_log: list[tuple[str, float, str]] = []
        self._mem: deque[tuple[int, Request]] = deque()
        self._leased = 0
        self._pages_run = 0  # records this run that count toward --max-pages
        self._ck_lock = asyncio.Lock()
        self._due = asyncio.Event()  # set when the buffers call for an early checkpoint
        self._error: Exception | None = None  # a failed checkpoint: the state is stuck

    def _open(self, new: bool) -> None:
        try:
            con = self._con = sqlite3.connect(self.path, isolation_level=None,
                                              check_same_thread=False, timeout=30)
            if new or check_db(self.path, con):
                _create(con)
            con.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit is not fsynced, so a power cut may lose the last
            # checkpoints, never the file's consistency; a process kill loses nothing.
            con.execute("PRAGMA synchronous=NORMAL")
            meta = read_meta(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('pid', ?)", (str(os.getpid()),))
            self._reader = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._load(con, meta)
        except sqlite3.Error as e:
            raise StateError(f"cannot use {self.path}: {e}") from None

    def _load(self, con: sqlite3.Connection, meta: dict[str, str]) -> None:
        # Output path -> its mark at the last checkpoint (None: none taken yet).
        self.outputs: dict[str, Any] = json.loads(meta.get("outputs", "{}"))
        self.settings_json: str | None = meta.get("settings")
        self._pages_before = int(meta.get("pages", "0"))
        q, d, f = con.execute(
            "SELECT total(queued), total(done), total(failed) FROM hosts").fetchone()
        self._queued, self._done, self._failed = int(q), int(d), int(f)
        n = con.execute("SELECT count(*) FROM requests").fetchone()[0]
        n += con.execute("SELECT count(*) FROM claims").fetchone()[0]
        seen = self._seen = SeenSet(expected=n)
        add = seen.add
        for (fp,) in con.execute("SELECT fp FROM requests"):
            add(fp % U64)
        for (fp,) in con.execute("SELECT fp FROM claims"):
            add(fp % U64)
        top = con.execute("SELECT max(id) FROM requests").fetchone()[0] or 0
        self._next_id = top + 1
        self._committed = top  # the highest row id in the file

    def _load_ranked(self) -> None:
        rows = self._read(SELECT + "WHERE priority != 0 AND state = 0")
        self._ranked = [(-row[5], row[0], request_of(row)) for row in rows]
        heapq.heapify(self._ranked)

    @property
    def pages_done(self) -> int:
        """Records that count toward ``--max-pages``, over every run so far."""
        return self._pages_before + self._pages_run

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a query on the reader; StateError if the file cannot be read."""
        assert self._reader is not None
        try:
            return self._reader.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StateError(f"cannot read {self.path}: {e}") from None

    def _close_files(self) -> None:
        for con in (self._reader, self._con):
            if con is not None:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
        self._reader = self._con = None
        # Last: closing any descriptor of the file drops SQLite's POSIX locks.
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
