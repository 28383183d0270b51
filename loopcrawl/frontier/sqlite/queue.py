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

This module is the queue and its leases; the other jobs are beside it:
``_db`` (the file, its lock and schema), ``_rows`` (a request as a row),
``checkpoint``, ``robots``, ``runs`` (what a run records first) and
``status`` (``loopcrawl status``).
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ... import errors
from ...http import Request
from ..base import FrontierStats, LinkFilter, unseen_links
from ._rows import DONE, FAILED, SELECT, request_of, state_of
from .checkpoint import Checkpoints
from .robots import RobotsRows
from .runs import RunSetup

if TYPE_CHECKING:
    from ...http import FetchRecord

__all__ = ["SqliteFrontier"]


class SqliteFrontier(Checkpoints, RobotsRows, RunSetup):
    """The frontier of a resumable crawl, in the SQLite file ``path``.

    Opening takes an exclusive lock on the file (``flock``, released by the
    OS when the process dies), checks it is a loopcrawl state, and loads the
    seen set. Raises ``StateError`` if the file is foreign, corrupt, or in
    use by another crawl.

    Leases never expire (``lease_ttl`` is None): the one process that holds
    the file holds every lease, and a kill returns them all (nothing leased
    is ever written, so on open they are queued again).
    """

    lease_ttl: float | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        checkpoint_interval: float = 1.0,  # seconds between checkpoints
        max_buffered: int = 50_000,  # changes held in RAM before an early checkpoint
    ) -> None:
        super().__init__(path)
        self.checkpoint_interval = checkpoint_interval
        self.max_buffered = max_buffered
        # Leasing: rows with id <= _cursor were leased in this process.
        self._cursor = 0
        # Released requests, leased again first: (row id, or None if not from here).
        self._released: deque[tuple[int | None, Request]] = deque()
        self._tokens = itertools.count(1)
        self._rowid: dict[int, int] = {}  # lease token -> its request's row id
        self._claims: dict[int, list[int]] = {}  # a leased request's fp -> the fps it claimed

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
                        keep: LinkFilter | None = None, fps: Sequence[int] | None = None) -> int:
        return await self.add(unseen_links(self._seen, urls, depth, referrer, keep, fps))

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        if self._seen.add(fp):
            if by is None:
                self._claim_log.append(fp)
            else:  # persisted when ``by`` is done: a kill before that refetches both
                self._claims.setdefault(by.fp, []).append(fp)
            return True
        return by is not None and fp in self._claims.get(by.fp, ())

    async def lease(self, n: int) -> list[Request]:
        """Positive priorities first, then the FIFO queue (priority 0: a plain
        crawl's every request), then negative ones, as ``MemoryFrontier``."""
        out: list[Request] = []
        rowid = self._rowid
        tokens = self._tokens
        ranked = self._ranked
        while ranked and ranked[0][0] < 0 and len(out) < n:
            _, i, r = heapq.heappop(ranked)
            rowid[_stamp(r, tokens)] = i
            out.append(r)
        released = self._released
        while released and len(out) < n:
            j, r = released.popleft()
            t = _stamp(r, tokens)
            if j is not None:
                rowid[t] = j
            out.append(r)
        cursor = self._cursor
        if len(out) < n and cursor < self._committed:
            want = n - len(out)
            rows = self._read(
                SELECT + "WHERE id > ? AND state = 0 AND priority = 0 ORDER BY id LIMIT ?",
                (cursor, want))
            for row in rows:
                r = request_of(row)
                rowid[_stamp(r, tokens)] = row[0]
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
            rowid[_stamp(r, tokens)] = i
            out.append(r)
            cursor = i
        self._cursor = cursor
        while ranked and len(out) < n:
            _, i, r = heapq.heappop(ranked)
            rowid[_stamp(r, tokens)] = i
            out.append(r)
        self._leased += len(out)
        self._queued -= len(out)
        return out

    async def ack(self, request: Request, record: FetchRecord) -> bool:
        self._leased -= 1
        rid = self._rowid.pop(request.lease, None)
        claims = self._claims.pop(request.fp, None) if self._claims else None
        if rid is None:
            return True  # not leased from here: nothing to persist
        state = state_of(record)
        self._acks.append((rid, state, record.error, request.url))
        if state == DONE:
            self._done += 1
        else:
            self._failed += 1
        if record.error != errors.ROBOTS_DENIED or state == FAILED:  # as the engine counts
            self._pages_run += 1
        if claims:
            self._claim_log.extend(claims)
        return True

    async def release(self, request: Request) -> None:
        self._leased -= 1
        self._queued += 1
        self._released.appendleft((self._rowid.pop(request.lease, None), request))

    async def extend(self, requests: Sequence[Request]) -> list[Request]:
        return []  # leases here never expire

    async def is_finished(self) -> bool:
        return self._queued <= 0 and self._leased <= 0

    async def statistics(self) -> FrontierStats:
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


def _stamp(r: Request, tokens: itertools.count[int]) -> int:
    """Give ``r`` its lease (the next token; the deadline stays inf): the token."""
    t = r.lease = next(tokens)
    return t
