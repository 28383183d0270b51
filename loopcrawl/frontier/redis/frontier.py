"""``RedisFrontier``: one worker's view of a crawl's frontier in Redis.

Every method is one script call (one round trip), and every move of a
request between queue, lease and done is that script, so it is atomic
(``_scripts.py``). Pages' new links and acks go in batches, one script
at a time (``_batch.Coalescer``): under load a page costs a fraction of a
script (BENCHMARKS.md). Leases are real: a token from the crawl's counter
and a deadline on the server's clock, ``lease_ttl`` from the lease or the
last ``extend``; any worker's next lease, extend, ``is_finished`` or
``statistics`` returns leases past their deadline to the front of the
queue, so a worker killed with SIGKILL loses nothing but time.

Calls go through ``RedisCrawl.call``, which runs a call again after a
dropped connection; each script is safe to run twice. An ack, release or
extend is checked against the lease token (an ack run twice reports the
lease lost the second time, and counts nothing twice); an add run twice
finds its links seen (``dont_filter`` requests aside, which it queues
again); a lease run twice leaves the first batch held by nobody until its
deadline, when it goes back to the queue.

The seen check of ``add_links`` is split in two. A worker keeps the
fingerprints it has sent to Redis (``_known``, bounded): ~29 of a page's 30
links were seen already, mostly by this worker, and cost a set lookup here
as in the in-process crawl. The rest go through ``keep`` (scope, traps) and
then to the one script that checks them against the crawl's seen set and
queues the new ones. So a page costs one round trip at most, and none when
every link is known here. A link another worker queued first reaches
``keep`` before the script finds it seen: scope answers the same, and the
trap guard may charge it to a family's budget (a little earlier cut of a
trap, never a page crawled twice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ... import errors
from ...urls import fingerprints, host_of
from ..base import FrontierStats, LinkFilter
from . import _codec
from ._batch import Coalescer

if TYPE_CHECKING:
    from ...http import FetchRecord, Request
    from . import RedisCrawl

__all__ = ["DEFAULT_LEASE_TTL", "RedisFrontier"]

DEFAULT_LEASE_TTL = 30.0  # seconds; a dead worker's requests wait this long at most
_MAX_LEASE = 1000  # requests per lease call (a script's reply stays small)
_KNOWN_MAX = 1 << 19  # fingerprints a worker remembers sending (~32 MB), then cleared
# Not fetched because of the crawl's own policy before any request went out:
# the page budget gets its place back, as the in-process scheduler does.
_UNCOUNTED = frozenset((errors.ROBOTS_DENIED, errors.TRAP))


class RedisFrontier:
    """The ``Frontier`` of one worker (``worker_id``) on a crawl in Redis."""

    def __init__(self, crawl: RedisCrawl, worker_id: str, *,
                 lease_ttl: float = DEFAULT_LEASE_TTL) -> None:
        if not lease_ttl > 0:
            raise ValueError("lease_ttl must be positive")
        self.lease_ttl: float | None = lease_ttl
        self.worker_id = worker_id
        self._crawl = crawl
        self._keys = k = crawl.keys
        self._ttl_ms = max(1, round(lease_ttl * 1000))
        self._known: set[int] = set()
        self._lease_keys = [k.n, k.q, k.qp, k.leases, k.deadlines, k.workers, k.meta]
        self._ack_keys = [k.n, k.leases, k.deadlines, k.claims, k.rate, k.hosts]
        self._queue_keys = [k.n, k.q, k.qp, k.leases, k.deadlines]
        self._scripts = crawl.scripts
        # Pages' new links and acks go in batches, one script at a time.
        self._writes = Coalescer(self._send)
        self._acking: set[int] = set()  # tokens whose ack is waiting or on its way
        self._before_acks: Callable[[], None] | None = None
        self._turn_keys = [k.n, k.q, k.qp, k.leases, k.deadlines, k.claims, k.rate, k.hosts]

    # -- queueing ------------------------------------------------------------
    async def add(self, requests: Sequence[Request]) -> int:
        if not requests:
            return 0
        split = await self._crawl.splitter()
        groups = []
        for r in requests:
            bucket, member = split(r.fp)
            groups.append((bucket, member, "0" if r.dont_filter else "1",
                           -r.priority if r.priority else "", _codec.encode(r)))
        n = (await self._writes.links(groups)).count(b"1")
        self._remember(r.fp for r in requests)
        return n

    async def add_links(self, urls: Sequence[str], depth: int, referrer: str | None,
                        keep: LinkFilter | None = None, fps: Sequence[int] | None = None) -> int:
        known = self._known
        new = [(u, fp) for u, fp in zip(urls, fingerprints(urls) if fps is None else fps,
                                        strict=True)
               if fp not in known]
        if keep is not None and new:
            kept = keep([u for u, _ in new])
            if len(kept) < len(new):
                wanted = set(kept)
                new = [(u, fp) for u, fp in new if u in wanted]
        if not new:
            return 0
        split = await self._crawl.splitter()
        dumps = orjson.dumps
        groups = []
        for u, fp in new:
            bucket, member = split(fp)
            groups.append((bucket, member, "1", "", dumps((u, depth, referrer))))
        n = (await self._writes.links(groups)).count(b"1")
        self._remember(fp for _, fp in new)
        return n

    def before_acks(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before each batch with acks leaves for Redis: the
        worker's outputs flush there, so an acked page (never fetched again)
        is in the output even if the worker is killed right after. Once a
        batch, not once a page: a SQLite commit costs more than a write."""
        self._before_acks = hook

    async def _send(self, links: list[Any], acks: list[Any]) -> bytes:
        """One TURN script for a batch: a line a group (a link's bucket
        becomes its seen set's place in KEYS); a flag a group back."""
        if acks and self._before_acks is not None:
            self._before_acks()  # their pages' output first (written before ack())
        k = self._keys
        keys = list(self._turn_keys)
        slots: dict[int, int] = {}
        lines = []
        for bucket, member, dedup, score, payload in links:
            at = slots.get(bucket)
            if at is None:
                keys.append(k.seen(bucket))
                at = slots[bucket] = len(keys)
            lines.append(b"%d\t%d\t%s\t%s\t%s" % (at, member, dedup.encode(),
                                                   str(score).encode(), payload))
        res: bytes = await self._crawl.run(self._scripts.turn, keys,
                                           [b"\n".join(lines), b"\n".join(acks)])
        return res

    def _remember(self, fps: Any) -> None:
        known = self._known
        if len(known) > _KNOWN_MAX:
            known.clear()  # Redis still knows them: only a round trip more
        known.update(fps)

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        split = await self._crawl.splitter()
        bucket, member = split(fp)
        k = self._keys
        got = await self._crawl.run(self._scripts.mark_seen, [k.seen(bucket), k.claims, k.n],
                                    [member, fp, "" if by is None else by.fp])
        return bool(got)

    # -- leases --------------------------------------------------------------
    async def lease(self, n: int) -> list[Request]:
        if n <= 0:
            return []
        res = await self._crawl.run(self._scripts.lease, self._lease_keys,
                                    [min(n, _MAX_LEASE), self._ttl_ms, self.worker_id])
        if len(res) == 1:
            return []
        deadline = res[0] / 1000
        token = int(res[1])
        out = []
        decode = _codec.decode
        for data in res[2].split(b"\n"):
            r = decode(data)
            r.lease = token
            r.lease_deadline = deadline
            token += 1
            out.append(r)
        return out

    async def ack(self, request: Request, record: FetchRecord) -> bool:
        e = record.error
        kind = b"d" if e is None else b"u" if e in _UNCOUNTED else b"d" if e in errors.POLICY else b"f"
        line = b"%d\t%d\t%s\t%s" % (request.lease, request.fp, host_of(request.url).encode(),
                                     kind)
        token = request.lease
        self._acking.add(token)
        try:
            return await self._writes.ack(line) == b"1"
        finally:
            self._acking.discard(token)

    async def release(self, request: Request) -> None:
        """Give the lease back; ignored while its ack is on its way: a caller
        cancelled as it acked (a worker stopping) gives back what it acked,
        and the ack, sent in a batch, must win, or the page, already
        written, would be fetched again."""
        if request.lease in self._acking:
            return
        await self._crawl.run(self._scripts.release, self._queue_keys,
                              [request.lease, -request.priority if request.priority else "",
                               _codec.encode(request)])

    async def extend(self, requests: Sequence[Request]) -> list[Request]:
        if not requests:
            return []
        k = self._keys
        res = await self._crawl.run(self._scripts.extend, [*self._queue_keys, k.workers],
                                    [self._ttl_ms, self.worker_id, *(r.lease for r in requests)])
        deadline = res[0] / 1000
        lost = [requests[i - 1] for i in res[1:]]
        gone = {id(r) for r in lost}
        for r in requests:
            if id(r) not in gone:
                r.lease_deadline = deadline
        return lost

    # -- status --------------------------------------------------------------
    async def is_finished(self) -> bool:
        return bool(await self._crawl.run(self._scripts.finished,
                                          [*self._queue_keys, self._keys.meta], []))

    async def statistics(self) -> FrontierStats:
        q, leased, done, failed, seen, expired, _, _ = await self._crawl.run(
            self._scripts.stats, self._queue_keys, [])
        return FrontierStats(q, leased, done + failed, seen, expired)

    async def close(self) -> None:
        """This worker leaves: it no longer shows among the crawl's live workers
        (the client is the crawl's, closed by ``RedisCrawl.close``)."""
        await self._writes.aclose()
        await self._crawl.run_command("ZREM", self._keys.workers, self.worker_id)

