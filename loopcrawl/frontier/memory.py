"""An in-memory frontier: a FIFO (breadth-first) queue and a set of fingerprints.

Requests with a non-zero ``priority`` (a spider's) wait in a heap beside the
FIFO, so the crawl's own requests never pay for ordering.

``max_queued`` bounds the requests waiting (not those leased): past it a
request is not queued nor marked seen (a later page may lead to it again,
once there is room), and is counted in ``skipped["queue_full"]``. A site
whose every page links 10,000 new URLs would otherwise grow the queue, at
~400 bytes a request, until memory runs out.

Leases are numbered from 1. By default they never expire (the holder is this
process); with ``lease_ttl`` they do, which is what a coordinator handing
requests to other processes needs: a holder that dies loses its leases at
their deadline, and the requests go back to the front of the queue.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import FrontierStats, LinkFilter, unseen_links

if TYPE_CHECKING:
    from ..http import FetchRecord, Request

_log = logging.getLogger("loopcrawl")


class MemoryFrontier:
    """Breadth-first, so pages are found at their shortest depth when the
    crawl is sequential; everything is lost when the process ends."""

    def __init__(self, *, lease_ttl: float | None = None, max_queued: int | None = None,
                 skipped: Counter[str] | None = None) -> None:
        """``lease_ttl``: seconds a lease lasts unless extended (None: forever);
        ``max_queued``: requests waiting, at most (None: no cap); ``skipped``:
        where requests refused past it are counted (the crawl's
        ``CrawlStats.skipped``; None: a counter of its own)."""
        self.lease_ttl = lease_ttl
        self.max_queued = max_queued
        self.skipped: Counter[str] = Counter() if skipped is None else skipped
        self._full_warned = False
        self._queue: deque[Request] = deque()  # priority 0: nearly every request
        # Requests with a priority (spiders): (-priority, arrival, request).
        self._ranked: list[tuple[int, int, Request]] = []
        self._seq = itertools.count()
        self._seen: set[int] = set()
        self._tokens = itertools.count(1)
        self._leased = 0
        self._done = 0
        self._expired = 0
        # Redirect targets claimed by leased requests: the request's fp -> fps.
        self._claims: dict[int, list[int]] = {}
        # With a lease_ttl only: token -> its request, and (deadline, token)
        # in deadline order (an extended lease is moved when its entry comes up).
        self._held: dict[int, Request] = {}
        self._deadlines: list[tuple[float, int]] = []

    async def add(self, requests: Sequence[Request]) -> int:
        seen = self._seen
        queue = self._queue
        cap = self.max_queued
        room = sys.maxsize if cap is None else cap - len(queue) - len(self._ranked)
        n = refused = 0
        for r in requests:
            fp = r.fp
            if fp in seen and not r.dont_filter:
                continue
            if n >= room:
                refused += 1
                continue
            seen.add(fp)
            if r.priority:
                heapq.heappush(self._ranked, (-r.priority, next(self._seq), r))
            else:
                queue.append(r)
            n += 1
        if refused:
            self._refuse(refused)
        return n

    def _refuse(self, n: int) -> None:
        """Count ``n`` requests refused with the queue full; warn the first time."""
        if not self._full_warned:
            self._full_warned = True
            _log.warning("the queue holds %s requests (max_queued): links past it are not "
                         "followed until it has room (counted as queue_full)",
                         f"{self.max_queued:,}")
        self.skipped["queue_full"] += n

    async def add_links(self, urls: Sequence[str], depth: int, referrer: str | None,
                        keep: LinkFilter | None = None, fps: Sequence[int] | None = None) -> int:
        return await self.add(unseen_links(self._seen, urls, depth, referrer, keep, fps))

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        if fp in self._seen:
            # A retry of ``by`` may follow the redirect it claimed before.
            return by is not None and fp in self._claims.get(by.fp, ())
        self._seen.add(fp)
        if by is not None:
            self._claims.setdefault(by.fp, []).append(fp)
        return True

    async def lease(self, n: int) -> list[Request]:
        if self.lease_ttl is not None:
            self._expire(time.time())
        q = self._queue
        if self._ranked:
            out = self._lease_ranked(n)
        else:
            out = [q.popleft() for _ in range(min(n, len(q)))]
        self._leased += len(out)
        tokens = self._tokens
        if self.lease_ttl is None:
            for r in out:
                r.lease = next(tokens)  # lease_deadline stays inf
        else:
            self._hold(out)
        return out

    def _lease_ranked(self, n: int) -> list[Request]:
        """Positive priorities first, then the FIFO queue (priority 0), then
        negative ones; first come, first served within one priority."""
        ranked, q = self._ranked, self._queue
        out: list[Request] = []
        while len(out) < n and ranked and ranked[0][0] < 0:
            out.append(heapq.heappop(ranked)[2])
        while len(out) < n and q:
            out.append(q.popleft())
        while len(out) < n and ranked:
            out.append(heapq.heappop(ranked)[2])
        return out

    async def ack(self, request: Request, record: FetchRecord) -> bool:
        if self.lease_ttl is not None and not self._give_back(request):
            return False  # expired, and queued again: the new holder acks it
        self._leased -= 1
        self._done += 1
        if self._claims:
            self._claims.pop(request.fp, None)
        return True

    async def release(self, request: Request) -> None:
        if self.lease_ttl is not None and not self._give_back(request):
            return
        self._leased -= 1
        self._queue.appendleft(request)

    async def extend(self, requests: Sequence[Request]) -> list[Request]:
        if self.lease_ttl is None:
            return []
        now = time.time()
        self._expire(now)
        deadline = now + self.lease_ttl
        lost = []
        for r in requests:
            if self._held.get(r.lease) is r:
                r.lease_deadline = deadline
            else:
                lost.append(r)
        return lost

    def _hold(self, out: list[Request]) -> None:
        assert self.lease_ttl is not None
        deadline = time.time() + self.lease_ttl
        tokens, held, deadlines = self._tokens, self._held, self._deadlines
        for r in out:
            t = r.lease = next(tokens)
            r.lease_deadline = deadline
            held[t] = r
            heapq.heappush(deadlines, (deadline, t))

    def _give_back(self, request: Request) -> bool:
        """End ``request``'s lease; False if it was lost (past its deadline)."""
        self._expire(time.time())
        held = self._held
        if held.get(request.lease) is not request:
            return False
        del held[request.lease]
        return True

    def _expire(self, now: float) -> None:
        """Queue again (at the front) every request whose lease has passed its
        deadline; its old holder's request object is left alone (a copy goes)."""
        held, deadlines = self._held, self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, t = heapq.heappop(deadlines)
            r = held.get(t)
            if r is None:
                continue  # acked or released meanwhile
            if r.lease_deadline > now:
                heapq.heappush(deadlines, (r.lease_deadline, t))  # extended
                continue
            del held[t]
            self._leased -= 1
            self._expired += 1
            again = copy.copy(r)
            if r.priority:
                heapq.heappush(self._ranked, (-r.priority, next(self._seq), again))
            else:
                self._queue.appendleft(again)

    async def is_finished(self) -> bool:
        if self.lease_ttl is not None:
            self._expire(time.time())
        return not self._queue and not self._ranked and not self._leased

    async def statistics(self) -> FrontierStats:
        if self.lease_ttl is not None:
            self._expire(time.time())
        return FrontierStats(len(self._queue) + len(self._ranked), self._leased, self._done,
                             len(self._seen), self._expired)

    async def close(self) -> None:
        return None
