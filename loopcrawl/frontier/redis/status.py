"""What ``loopcrawl status`` shows of a crawl in Redis, read in one round trip.

The counters are the scripts' own (``n``): kept as requests move, never
counted by scanning. Pages per second come from ``rate``, pages acked per
Unix second, which the ack script keeps to the last minute. Workers are
``workers``, each worker's last heartbeat (its last lease or extend, which
a working worker makes at least every third of its lease TTL): one silent
for ``gone_after`` seconds is shown as gone, and forgotten after a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .frontier import DEFAULT_LEASE_TTL

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from . import RedisCrawl

__all__ = ["CrawlStatus", "WorkerStatus", "read_status"]

GONE_AFTER = 3 * DEFAULT_LEASE_TTL  # seconds of silence before a worker is shown as gone
_FORGET_AFTER = 86_400.0  # seconds: a worker silent this long leaves the list
_TOP_HOSTS = 10
_WINDOW = 60  # seconds of the rate


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    id: str
    last_seen: float  # Unix time (the server's clock) of its last heartbeat
    age: float  # seconds since then
    alive: bool  # heard from within ``gone_after``


@dataclass(frozen=True, slots=True)
class CrawlStatus:
    name: str
    queued: int
    leased: int  # held by some worker now
    done: int  # finished without a failure (policy refusals included: robots.txt, traps)
    failed: int  # finished as a failure, after its retries
    seen: int  # distinct URLs found (the seen set's size)
    expired: int  # leases that passed their deadline and were queued again
    pages: int  # requests counted against max_pages
    max_pages: int | None
    pages_per_s: float  # over the last minute (or since the crawl began, if sooner)
    workers: tuple[WorkerStatus, ...]  # most recent first
    top_hosts: tuple[tuple[str, int], ...]  # (host, pages finished), most first
    created: float  # Unix time
    now: float  # Unix time on the server when this was read

    @property
    def finished(self) -> bool:
        """Nothing queued and nothing leased, or the page budget spent with
        nothing leased: what makes a worker exit."""
        spent = self.max_pages is not None and self.pages >= self.max_pages
        return self.leased == 0 and (self.queued == 0 or spent)


async def read_status(crawl: RedisCrawl, gone_after: float = GONE_AFTER) -> CrawlStatus:
    """The crawl's status now; ``ConfigError`` if there is no such crawl."""
    k = crawl.keys
    await crawl.splitter()  # the ConfigError for a crawl that does not exist

    stats = await crawl.run(crawl.scripts.stats, [k.n, k.q, k.qp, k.leases, k.deadlines], [])

    async def read(client: Redis) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        pipe.hmget(k.meta, ["created", "max_pages"])
        pipe.hgetall(k.rate)
        pipe.zrevrange(k.workers, 0, -1, withscores=True)
        pipe.zrevrange(k.hosts, 0, _TOP_HOSTS - 1, withscores=True)
        return list(await pipe.execute())

    meta, rate, workers, hosts = await crawl.call(read)
    q, leased, done, failed, seen, expired, pages, now_ms = stats
    now = now_ms / 1000
    created = float(meta[0] or now)
    max_pages = int(meta[1]) if meta[1] is not None else None
    sec = int(now)
    recent = sum(int(c) for s, c in rate.items() if int(s) > sec - _WINDOW)
    window = min(float(_WINDOW), max(now - created, 1.0))
    ws = []
    stale = []
    for wid, ms in workers:
        name = wid.decode() if isinstance(wid, bytes) else str(wid)
        age = max(0.0, now - ms / 1000)
        if age > _FORGET_AFTER:
            stale.append(name)
            continue
        ws.append(WorkerStatus(name, ms / 1000, age, age <= gone_after))
    if stale:
        await crawl.run_command("ZREM", k.workers, *stale)
    top = tuple((h.decode() if isinstance(h, bytes) else str(h), int(n))
                for h, n in hosts)
    return CrawlStatus(crawl.name, int(q), int(leased), int(done), int(failed), int(seen),
                       int(expired), int(pages), max_pages, recent / window, tuple(ws), top,
                       created, now)
