"""An in-memory frontier: a FIFO (breadth-first) queue and a set of fingerprints.

Requests with a non-zero ``priority`` (a spider's) wait in a heap beside the
FIFO, so the crawl's own requests never pay for ordering."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import FrontierStats, LinkFilter, unseen_links

if TYPE_CHECKING:
    from ..http import FetchRecord, Request


class MemoryFrontier:
    """Breadth-first, so pages are found at their shortest depth when the
    crawl is sequential; everything is lost when the process ends."""

    def __init__(self) -> None:
        self._queue: deque[Request] = deque()  # priority 0: nearly every request
        # Requests with a priority (spiders): (-priority, arrival, request).
        self._ranked: list[tuple[int, int, Request]] = []
        self._seq = itertools.count()
        self._seen: set[int] = set()
        self._leased = 0
        self._done = 0
        # Redirect targets claimed by leased requests: id(request) -> fps.
        self._claims: dict[int, list[int]] = {}

    async def add(self, requests: Sequence[Request]) -> int:
        seen = self._seen
        queue = self._queue
        n = 0
        for r in requests:
            fp = r.fp
            if fp in seen and not r.dont_filter:
                continue
            seen.add(fp)
            if r.priority:
                heapq.heappush(self._ranked, (-r.priority, next(self._seq), r))
            else:
                queue.append(r)
            n += 1
        return n

    async def add_links(self, urls: Sequence[str], depth: int, referrer: str | None,
                        keep: LinkFilter | None = None) -> int:
        return await self.add(unseen_links(self._seen, urls, depth, referrer, keep))

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        if fp in self._seen:
            # A retry of ``by`` may follow the redirect it claimed before.
            return by is not None and fp in self._claims.get(id(by), ())
        self._seen.add(fp)
        if by is not None:
            self._claims.setdefault(id(by), []).append(fp)
        return True

    async def lease(self, n: int) -> list[Request]:
        q = self._queue
        if self._ranked:
            return self._lease_ranked(n)
        k = min(n, len(q))
        out = [q.popleft() for _ in range(k)]
        self._leased += k
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
        self._leased += len(out)
        return out

    async def ack(self, request: Request, record: FetchRecord) -> None:
        self._leased -= 1
        self._done += 1
        if self._claims:
            self._claims.pop(id(request), None)

    async def release(self, request: Request) -> None:
        self._leased -= 1
        self._queue.appendleft(request)

    def is_finished(self) -> bool:
        return not self._queue and not self._ranked and not self._leased

    def statistics(self) -> FrontierStats:
        return FrontierStats(len(self._queue) + len(self._ranked), self._leased, self._done,
                             len(self._seen))

    async def close(self) -> None:
        return None
