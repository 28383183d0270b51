"""A persistent frontier in one SQLite file: kill the crawl at any moment, resume.

The file (WAL mode) holds the queue and the done/failed markers (table
``requests``, one row per request, in the order found: FIFO within a
priority), the redirect targets fetched inline (``claims``), per-host
counters (``hosts``), robots.txt (``robots``) and the output checkpoint
(``meta``: each output's path and where it ended, the settings, the schema
version). ``PRAGMA application_id`` marks the file as loopcrawl's, so a
foreign or corrupt file is refused, never overwritten.

The checkpoint protocol (see docs/state.md):

- Between checkpoints every change (requests found, requests done, claims)
  is buffered in memory; nothing leased is ever written.
- A checkpoint flushes the outputs, fsyncs them, and then commits in **one**
  transaction all buffered changes together with where each output ends
  (its "mark": a byte offset, or the last row ids of an SQLite output).
- On open, everything not marked done is queued again, and the caller
  reopens each output cut back to its mark (``resume_at=``).

So after a kill the state and the output agree on the last checkpoint: each
page done before it has its line in the output exactly once, and each page
after it (or in flight) is fetched again and written once more.

The seen set lives in RAM as a ``SeenSet`` (~17 bytes per URL), rebuilt from
the file on open; the queue lives on disk and is leased in batches, so memory
holds only a bounded working set.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import heapq
import inspect
import json
import os
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .. import errors
from ..errors import OutputError, StateError
from ..http import Request
from ..urls import host_of
from .base import CheckpointOutput, FrontierStats, LinkFilter, unseen_links
from .seen import SeenSet

if TYPE_CHECKING:
    from ..http import FetchRecord
    from ..settings import Settings

__all__ = ["HostCounts", "SqliteFrontier", "StateStatus", "read_status"]

APPLICATION_ID = 0x4C435257  # "LCRW": PRAGMA application_id of a loopcrawl state file
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

QUEUED, DONE, FAILED = 0, 1, 2
# Errors that are the crawl's policy, not a failure: --recrawl-failed skips them.
POLICY_ERRORS = frozenset({errors.ROBOTS_DENIED, errors.REDIRECT_REFUSED, errors.TRAP})

ROBOTS_TTL = 24 * 3600.0  # seconds: RFC 9309 §2.4 caps the use of a cached robots.txt
_U64 = 1 << 64
_I63 = 1 << 63

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


def _signed(fp: int) -> int:
    return fp - _U64 if fp >= _I63 else fp


def _spider_fields(r: Request) -> str | None:
    """A spider's fields of ``r`` as JSON (None for a plain crawl's request):
    callbacks by name, since a function cannot be written to disk."""
    if (r.callback is None and r.errback is None and not r.cb_kwargs and not r.headers
            and not r.cookies and r.auth is None and not r.dont_filter):
        return None
    d: dict[str, Any] = {}
    for key in ("callback", "errback"):
        cb = getattr(r, key)
        if cb is None:
            continue
        if not isinstance(cb, str):
            if not inspect.ismethod(cb):
                raise StateError(f"the {key} of {r.url} ({cb!r}) is not a method of the "
                                 "spider, so it cannot be kept in a state file")
            cb = cb.__name__
        d[key] = cb
    for key in ("cb_kwargs", "headers", "cookies", "auth", "dont_filter"):
        v = getattr(r, key)
        if v:
            d[key] = v
    try:
        return orjson.dumps(d).decode()
    except TypeError as e:
        raise StateError(f"the request for {r.url} cannot be kept in a state file "
                         f"(cb_kwargs must be JSON values): {e}") from None


def _request(row: tuple[Any, ...]) -> Request:
    """A queued row back as a Request (the inverse of the INSERT in ``_commit``)."""
    _, url, depth, referrer, method, prio, retries, fp, meta, spider, body = row
    r = Request(url, depth, referrer, method, prio, retries, fp % _U64,
                orjson.loads(meta) if meta else None)
    if spider is not None:
        for key, v in orjson.loads(spider).items():
            setattr(r, key, tuple(v) if key == "auth" else v)
    if body:
        r.body = bytes(body)
    return r


_SELECT = ("SELECT id, url, depth, referrer, method, priority, retries, fp, meta, spider, body "
           "FROM requests ")


def _state_of(record: FetchRecord) -> int:
    e = record.error
    if e is None:
        return DONE
    if e == errors.ROBOTS_DENIED:
        # The engine records an unreachable or 5xx robots.txt as robots_denied
        # too (robots.py words it so): a failure worth another try, not a rule.
        return FAILED if (record.message or "").startswith(_ROBOTS_TROUBLE) else DONE
    return DONE if e in POLICY_ERRORS else FAILED


_ROBOTS_TROUBLE = ("robots.txt unreachable", "robots.txt answered")


@dataclass(frozen=True, slots=True)
class HostCounts:
    host: str
    queued: int
    done: int
    failed: int


@dataclass(frozen=True, slots=True)
class StateStatus:
    """What ``loopcrawl status`` prints: the state as of its last checkpoint."""

    path: str
    running_pid: int | None  # the crawl holding the file now, if any
    queued: int
    in_flight: int  # leased by the running crawl: being fetched or about to be
    done: int
    failed: int
    seen: int
    outputs: dict[str, Any]  # path -> its mark at the last checkpoint (bytes, or row ids)
    checkpoint_at: float | None  # Unix time
    top_hosts: tuple[HostCounts, ...]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["top_hosts"] = [
            {"host": h.host, "queued": h.queued, "done": h.done, "failed": h.failed}
            for h in self.top_hosts
        ]
        return d


@dataclass(slots=True)
class _Snapshot:
    """The changes one checkpoint commits (taken on the loop, written on a thread)."""

    inserts: list[tuple[int, Request]]
    acks: list[tuple[int, int, str | None, str]]  # rowid, state, error, url
    claims: list[int]
    robots: list[tuple[str, float, str]]
    marks: dict[str, Any] | None  # output path -> where it ended (None: no outputs)
    in_flight: int
    pages: int


def _check_file(path: str, fd: int) -> bool:
    """True if ``path`` is new (empty); raise StateError if it is not SQLite."""
    head = os.pread(fd, 100, 0)
    if not head:
        return True
    if not head.startswith(_SQLITE_MAGIC):
        raise StateError(f"{path} is not a loopcrawl state file (not an SQLite database); "
                         "it was left untouched")
    return False


def _check_db(path: str, con: sqlite3.Connection) -> bool:
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


def _meta(con: sqlite3.Connection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


class SqliteFrontier:
    """The frontier of a resumable crawl, in the SQLite file ``path``.

    Opening takes an exclusive lock on the file (``flock``, released by the
    OS when the process dies), checks it is a loopcrawl state, and loads the
    seen set. Raises ``StateError`` if the file is foreign, corrupt, or in
    use by another crawl.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        checkpoint_interval: float = 1.0,  # seconds between checkpoints
        max_buffered: int = 50_000,  # changes held in RAM before an early checkpoint
    ) -> None:
        self.path = os.fspath(path)
        self.checkpoint_interval = checkpoint_interval
        self.max_buffered = max_buffered
        self._con: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # Queued requests with a priority: (-priority, row id, request).
        self._ranked: list[tuple[int, int, Request]] = []
        self._lock_fd = self._lock(self.path)
        try:
            new = _check_file(self.path, self._lock_fd)
            self._open(new)
            self._load_ranked()
        except BaseException:
            self._close_files()
            raise
        self._ck_lock = asyncio.Lock()
        self._due = asyncio.Event()
        self._error: Exception | None = None
        # Leasing: rows with id <= _cursor were leased in this process.
        self._cursor = 0
        self._released: deque[Request] = deque()
        self._rowid: dict[int, int] = {}  # id(leased request) -> its row id
        self._claims: dict[int, list[int]] = {}  # id(leased request) -> fps it claimed
        # Changes since the last checkpoint, and rows found but not yet
        # committed (leased from RAM until they can be read back from the file).
        self._inserts: list[tuple[int, Request]] = []
        self._acks: list[tuple[int, int, str | None, str]] = []
        self._claim_log: list[int] = []
        self._robots_log: list[tuple[str, float, str]] = []
        self._mem: deque[tuple[int, Request]] = deque()
        self._leased = 0
        self._pages_run = 0  # records this run that count toward --max-pages

    # -- opening -----------------------------------------------------------
    @staticmethod
    def _lock(path: str) -> int:
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
            pid = _running_pid(path)
            who = f" (pid {pid})" if pid else ""
            raise StateError(f"{path} is in use by another crawl{who}; wait for it to end, "
                             "or stop it, before resuming") from None
        return fd

    def _open(self, new: bool) -> None:
        try:
            con = self._con = sqlite3.connect(self.path, isolation_level=None,
                                              check_same_thread=False, timeout=30)
            if new or _check_db(self.path, con):
                self._create(con)
            con.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit is not fsynced, so a power cut may lose the last
            # checkpoints, never the file's consistency; a process kill loses nothing.
            con.execute("PRAGMA synchronous=NORMAL")
            meta = _meta(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('pid', ?)", (str(os.getpid()),))
            self._reader = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._load(con, meta)
        except sqlite3.Error as e:
            raise StateError(f"cannot use {self.path}: {e}") from None

    def _create(self, con: sqlite3.Connection) -> None:
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
            add(fp % _U64)
        for (fp,) in con.execute("SELECT fp FROM claims"):
            add(fp % _U64)
        top = con.execute("SELECT max(id) FROM requests").fetchone()[0] or 0
        self._next_id = top + 1
        self._committed = top  # the highest row id in the file

    def _load_ranked(self) -> None:
        assert self._reader is not None
        try:
            rows = self._reader.execute(
                _SELECT + "WHERE priority != 0 AND state = 0").fetchall()
        except sqlite3.Error as e:
            raise StateError(f"cannot read {self.path}: {e}") from None
        self._ranked = [(-row[5], row[0], _request(row)) for row in rows]
        heapq.heapify(self._ranked)

    # -- what the CLI sets up before a run ----------------------------------
    @property
    def pages_done(self) -> int:
        """Records that count toward ``--max-pages``, over every run so far."""
        return self._pages_before + self._pages_run

    def bind_outputs(self, paths: Sequence[str]) -> list[Any]:
        """Tie the state to these output files; return for each where to cut it
        back to (its ``resume_at``), None for a fresh one.

        Refuses (StateError) another set of outputs than the state was written
        with, once it has done any work: the pages done before would be
        missing from a new output, and resuming one not named would leave it
        behind.
        """
        want = [os.path.abspath(p) for p in paths]
        if set(want) != set(self.outputs):
            if self._done + self._failed > 0:
                if not self.outputs:
                    raise StateError(f"{self.path} holds a crawl that wrote no output; its "
                                     f"pages would be missing from {', '.join(paths)}: start "
                                     "a new state file")
                had = " and ".join(self.outputs)
                raise StateError(f"{self.path} belongs to the crawl writing {had}; pass -o "
                                 f"{had} to resume it (or use a new state file)")
            self.outputs = dict.fromkeys(want)  # nothing done yet: these, from scratch
        assert self._con is not None
        self._con.execute("INSERT OR REPLACE INTO meta VALUES ('outputs', ?)",
                          (json.dumps(self.outputs),))
        return [self.outputs[p] for p in want]

    def bind_output(self, path: str | None) -> int:
        """``bind_outputs`` for one byte-offset output (or none): the offset."""
        marks = self.bind_outputs([path] if path else [])
        return int(marks[0] or 0) if marks else 0

    def note_settings(self, settings: Settings) -> list[str]:
        """Record what this run crawls; return the settings that differ from
        the previous run's (the crawl goes on with the new ones)."""
        new = {
            "seeds": list(settings.seeds), "scope": settings.scope,
            "allow": list(settings.allow), "deny": list(settings.deny),
            "depth": settings.depth, "max_pages": settings.max_pages,
            "obey_robots": settings.obey_robots, "user_agent": settings.user_agent,
        }
        old: dict[str, Any] = json.loads(self.settings_json) if self.settings_json else new
        changed = [k for k in new if k != "seeds" and old.get(k) != new[k]]
        merged = dict(new, seeds=sorted(set(old.get("seeds", [])) | set(settings.seeds)))
        self.settings_json = json.dumps(merged, sort_keys=True)
        assert self._con is not None
        self._con.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)",
                          (self.settings_json,))
        return changed

    def requeue_failed(self) -> int:
        """Queue every failed request again (``--recrawl-failed``); return how many.

        Committed at once: a kill before they are fetched leaves them queued.
        """
        con = self._con
        assert con is not None
        try:
            con.execute("BEGIN IMMEDIATE")
            rows = con.execute("SELECT url FROM requests WHERE state = ?", (FAILED,)).fetchall()
            con.execute("UPDATE requests SET state = ?, error = NULL, retries = 0 "
                        "WHERE state = ?", (QUEUED, FAILED))
            per_host = Counter(host_of(u) for (u,) in rows)
            con.executemany("UPDATE hosts SET queued = queued + ?, failed = failed - ? "
                            "WHERE host = ?", [(k, k, h) for h, k in per_host.items()])
            con.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise StateError(f"cannot write {self.path}: {e}") from None
        self._queued += len(rows)
        self._failed -= len(rows)
        self._load_ranked()
        return len(rows)

    # -- the Frontier protocol ----------------------------------------------
    async def add(self, requests: Sequence[Request]) -> int:
        add = self._seen.add
        inserts = self._inserts
        mem = self._mem
        rid = start = self._next_id
        try:
            for r in requests:
                if not add(r.fp) and not r.dont_filter:
                    continue
                inserts.append((rid, r))
                if r.priority:
                    heapq.heappush(self._ranked, (-r.priority, rid, r))
                else:
                    mem.append((rid, r))
                rid += 1
        finally:  # row ids are never handed out twice, even if a request is bad
            self._next_id = rid
            self._queued += rid - start
        if len(inserts) > self.max_buffered:
            self._due.set()
        return rid - start

    async def add_links(self, urls: Sequence[str], depth: int, referrer: str | None,
                        keep: LinkFilter | None = None) -> int:
        return await self.add(unseen_links(self._seen, urls, depth, referrer, keep))

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        if self._seen.add(fp):
            if by is None:
                self._claim_log.append(fp)
            else:  # persisted when ``by`` is done: a kill before that refetches both
                self._claims.setdefault(id(by), []).append(fp)
            return True
        return by is not None and fp in self._claims.get(id(by), ())

    async def lease(self, n: int) -> list[Request]:
        """Positive priorities first, then the FIFO queue (priority 0: a plain
        crawl's every request), then negative ones, as ``MemoryFrontier``."""
        out: list[Request] = []
        rowid = self._rowid
        ranked = self._ranked
        while ranked and ranked[0][0] < 0 and len(out) < n:
            _, i, r = heapq.heappop(ranked)
            rowid[id(r)] = i
            out.append(r)
        released = self._released
        while released and len(out) < n:
            out.append(released.popleft())  # its row id is still in _rowid
        cursor = self._cursor
        if len(out) < n and cursor < self._committed:
            want = n - len(out)
            assert self._reader is not None
            try:
                rows = self._reader.execute(
                    _SELECT + "WHERE id > ? AND state = 0 AND priority = 0 ORDER BY id LIMIT ?",
                    (cursor, want)).fetchall()
            except sqlite3.Error as e:
                raise StateError(f"cannot read {self.path}: {e}") from None
            for row in rows:
                r = _request(row)
                rowid[id(r)] = row[0]
                out.append(r)
            if rows:
                cursor = rows[-1][0]
            if len(rows) < want:
                # The file has no queued row left past the cursor (the reader may
                # already see a commit still finishing: hence the max).
                cursor = max(cursor, self._committed)
        mem = self._mem
        while mem and len(out) < n:
            i, r = mem.popleft()
            if i <= cursor:
                continue  # committed meanwhile, and leased from the file
            rowid[id(r)] = i
            out.append(r)
            cursor = i
        self._cursor = cursor
        while ranked and len(out) < n:
            _, i, r = heapq.heappop(ranked)
            rowid[id(r)] = i
            out.append(r)
        self._leased += len(out)
        self._queued -= len(out)
        return out

    async def ack(self, request: Request, record: FetchRecord) -> None:
        self._leased -= 1
        rid = self._rowid.pop(id(request), None)
        claims = self._claims.pop(id(request), None) if self._claims else None
        if rid is None:
            return  # not leased from here: nothing to persist
        state = _state_of(record)
        self._acks.append((rid, state, record.error, request.url))
        if state == DONE:
            self._done += 1
        else:
            self._failed += 1
        if record.error != errors.ROBOTS_DENIED or state == FAILED:  # as the engine counts
            self._pages_run += 1
        if claims:
            self._claim_log.extend(claims)

    async def release(self, request: Request) -> None:
        self._leased -= 1
        self._queued += 1
        self._released.appendleft(request)

    # -- robots.txt, kept across runs (robots.RobotsStore) ----------------------
    def robots_get(self, host: str) -> str | None:
        assert self._reader is not None
        try:
            row = self._reader.execute("SELECT fetched_at, body FROM robots WHERE host = ?",
                                       (host,)).fetchone()
        except sqlite3.Error as e:
            raise StateError(f"cannot read {self.path}: {e}") from None
        if row is None or time.time() - row[0] > ROBOTS_TTL:
            return None
        return str(row[1])

    def robots_put(self, host: str, text: str) -> None:
        self._robots_log.append((host, time.time(), text))  # with the next checkpoint

    def is_finished(self) -> bool:
        return self._queued <= 0 and self._leased <= 0

    def statistics(self) -> FrontierStats:
        return FrontierStats(max(self._queued, 0), self._leased,
                             self._done + self._failed, len(self._seen))

    async def close(self) -> None:
        """Close the file without a checkpoint: changes since the last one are
        dropped, exactly as if the process had been killed."""
        async with self._ck_lock:
            self._close_files()

    def __enter__(self) -> SqliteFrontier:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close (no checkpoint) outside an event loop; safe after ``close()``."""
        self._close_files()

    # -- checkpoints --------------------------------------------------------
    async def checkpoint(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        async with self._ck_lock:
            if self._error is not None:
                raise self._error
            if self._con is None:
                raise StateError(f"{self.path} is closed")
            outs = _outputs(outputs)
            try:
                marks = None
                if outs:
                    marks = {}
                    for o in outs:
                        o.flush()
                        marks[os.path.abspath(o.path)] = o.tell()
            except OutputError as e:
                self._error = e
                raise
            snap = _Snapshot(self._inserts, self._acks, self._claim_log, self._robots_log,
                             marks, self._leased, self.pages_done)
            self._inserts, self._acks, self._claim_log, self._robots_log = [], [], [], []
            top = self._next_id - 1
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, self._commit, snap, outs)
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                # The commit runs on: wait for it, so no two ever overlap.
                await asyncio.wait({fut})
                self._committed_ok(fut, top, marks)
                raise
            self._committed_ok(fut, top, marks)

    def _committed_ok(
        self, fut: asyncio.Future[None], top: int, marks: dict[str, Any] | None
    ) -> None:
        exc = fut.exception()
        if exc is not None:
            self._error = exc if isinstance(exc, OutputError | StateError) else StateError(
                f"cannot write {self.path}: {exc}")
            raise self._error
        self._committed = top
        if marks is not None:
            self.outputs = marks
        mem = self._mem
        while mem and mem[0][0] <= top:
            mem.popleft()  # readable from the file from now on

    async def run_checkpoints(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.checkpoint_interval):
                    await self._due.wait()
            self._due.clear()
            await self.checkpoint(outputs)

    def _commit(self, snap: _Snapshot, outputs: list[CheckpointOutput]) -> None:
        """Write one checkpoint (on a worker thread): outputs first, then the state."""
        for o in outputs:
            o.fsync()  # a mark we record must never point past durable data
        con = self._con
        assert con is not None
        acked = {rid: (state, err, url) for rid, state, err, url in snap.acks}
        hosts: dict[str, list[int]] = {}
        rows = []
        for rid, r in snap.inserts:
            h = hosts.setdefault(host_of(r.url), [0, 0, 0])
            a = acked.pop(rid, None)
            state, err = (a[0], a[1]) if a else (QUEUED, None)
            h[state] += 1
            rows.append((rid, _signed(r.fp), r.url, r.depth, r.referrer, r.method, r.priority,
                         r.retries, orjson.dumps(r.meta).decode() if r.meta else None,
                         state, err, _spider_fields(r), r.body or None))
        updates = []
        for rid, (state, err, url) in acked.items():
            h = hosts.setdefault(host_of(url), [0, 0, 0])
            h[QUEUED] -= 1
            h[state] += 1
            updates.append((state, err, rid))
        try:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.executemany("UPDATE requests SET state = ?, error = ? WHERE id = ?", updates)
            con.executemany("INSERT OR IGNORE INTO claims VALUES (?)",
                            [(_signed(fp),) for fp in snap.claims])
            con.executemany("INSERT OR REPLACE INTO robots VALUES (?, ?, ?)", snap.robots)
            con.executemany(
                "INSERT INTO hosts VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET "
                "queued = queued + excluded.queued, done = done + excluded.done, "
                "failed = failed + excluded.failed",
                [(h, q, d, f) for h, (q, d, f) in hosts.items()])
            meta = [("checkpoint_at", repr(time.time())), ("in_flight", str(snap.in_flight)),
                    ("pages", str(snap.pages))]
            if snap.marks is not None:
                meta.append(("outputs", json.dumps(snap.marks)))
            con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            con.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise StateError(f"cannot write the crawl state {self.path}: {e}") from None

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


def _outputs(
    outputs: CheckpointOutput | Sequence[CheckpointOutput] | None,
) -> list[CheckpointOutput]:
    if outputs is None:
        return []
    if isinstance(outputs, Sequence):
        return list(outputs)
    return [outputs]


def _running_pid(path: str) -> int | None:
    """The pid a running crawl recorded in ``path``, if it can be read."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'pid'").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None


def read_status(path: str, *, top: int = 10) -> StateStatus:
    """Counts and top hosts of the state file ``path``, read-only; works while
    a crawl runs on it (its figures are then those of its last checkpoint)."""
    if not os.path.isfile(path):
        raise StateError(f"{path} does not exist")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _check_file(path, fd):
            raise StateError(f"{path} is empty: no crawl has checkpointed into it yet")
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            running = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            running = True
    finally:
        os.close(fd)  # before SQLite opens the file (POSIX locks are per process)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as e:
        raise StateError(f"cannot read {path}: {e}") from None
    try:
        if _check_db(path, con):
            raise StateError(f"{path} is empty: no crawl has checkpointed into it yet")
        try:
            meta = _meta(con)
            q, d, f = con.execute(
                "SELECT total(queued), total(done), total(failed) FROM hosts").fetchone()
            seen = con.execute("SELECT count(*) FROM requests").fetchone()[0]
            seen += con.execute("SELECT count(*) FROM claims").fetchone()[0]
            hosts = tuple(HostCounts(*row) for row in con.execute(
                "SELECT host, queued, done, failed FROM hosts "
                "ORDER BY queued + done + failed DESC, host LIMIT ?", (top,)))
        except sqlite3.Error as e:
            raise StateError(f"cannot read {path}: {e}") from None
    finally:
        con.close()
    in_flight = int(meta.get("in_flight", "0")) if running else 0
    ck = meta.get("checkpoint_at")
    return StateStatus(
        path=path,
        running_pid=(int(meta.get("pid", "0")) or None) if running else None,
        queued=max(int(q) - in_flight, 0),
        in_flight=in_flight,
        done=int(d),
        failed=int(f),
        seen=seen,
        outputs=json.loads(meta.get("outputs", "{}")),
        checkpoint_at=float(ck) if ck else None,
        top_hosts=hosts,
    )
