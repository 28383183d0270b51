"""What the Redis frontier costs a worker per page: round trips, bytes and
(under callgrind) instructions, without the network or the parse.

A page's frontier calls as the engine makes them: ``CONCURRENCY`` workers
take requests leased in batches, wait out a fetch (exponential, LATENCY
seconds on average: pages end at scattered times), then make ``add_links``
of the page's 30 links (29 seen before, 1 new: a page to come) and ``ack``. Round trips are the
scripts the server ran (``INFO commandstats``), bytes its network counters.

    .venv/bin/python benchmarks/redis_frontier_cost.py [PAGES] [CONCURRENCY] [LATENCY]

Instructions per page: run it under ``valgrind --tool=callgrind`` with two
page counts and divide the difference by the difference of pages (start-up
cancels out); ``--baseline`` runs the same loop on a local list (no Redis
calls), whose figure is subtracted. Run from the repository root (it starts a redis-server from
``tests/redis_server.py``).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from loopcrawl.frontier.redis import RedisCrawl
from loopcrawl.http import FetchRecord, Request
from loopcrawl.settings import Settings
from tests.redis_server import RedisServer

LINKS = 30  # links a page, of which one is new


async def crawl(url: str, pages: int, concurrency: int, latency: float,
                baseline: bool = False) -> dict[str, float]:
    c = await RedisCrawl.connect(url, "bench")
    await c.create_or_add(Settings(), ["http://site.test/0"])
    f = c.frontier("w1")
    common = [f"http://site.test/menu/{i}" for i in range(LINKS - 1)]
    await f.add_links(common, 1, None)  # the menu every page links to: seen
    for r in await f.lease(100):
        await f.ack(r, FetchRecord(r.url, 0, None, 0.0, status=200))
    sync = redis.Redis.from_url(url)
    done = 0
    nxt = 0
    buffer: list[Request] = []
    rng = random.Random(1)

    async def worker() -> None:
        nonlocal done, nxt
        while done < pages:
            if not buffer:
                buffer.extend(await lease(max(256, concurrency * 4)))
                if not buffer:
                    return
                continue
            r = buffer.pop()
            if latency:  # the fetch: pages end at scattered times, as on the wire
                await asyncio.sleep(rng.expovariate(1 / latency))
            nxt += 1  # the page's one new link: a page to come
            await add_links([*common, f"http://site.test/{nxt}"], r.depth + 1, r.url)
            await ack(r, FetchRecord(r.url, r.depth, r.referrer, 0.0, status=200))
            done += 1

    lease, add_links, ack = f.lease, f.add_links, f.ack
    if baseline:  # the loop alone, with a local queue: what the frontier adds is the rest
        local = [Request(f"http://site.test/{i}") for i in range(pages + 1)]

        async def lease(n: int) -> list[Request]:
            out = local[:n]
            del local[:n]
            return out

        async def add_links(urls: list[str], depth: int, ref: str | None) -> int:
            return 0

        async def ack(r: Request, rec: FetchRecord) -> bool:
            return True

    # Queued before, in both modes: the pages to come, so that leases come in
    # full batches as from a crawl's large queue.
    await f.add_links([f"http://site.test/{i}" for i in range(1, pages + 1)], 1, None)
    nxt = pages
    before = sync.info("commandstats"), sync.info("stats")
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    after = sync.info("commandstats"), sync.info("stats")
    scripts = (after[0].get("cmdstat_evalsha", {}).get("calls", 0)
               - before[0].get("cmdstat_evalsha", {}).get("calls", 0))
    usec = (after[0].get("cmdstat_evalsha", {}).get("usec", 0)
            - before[0].get("cmdstat_evalsha", {}).get("usec", 0))
    rx = after[1]["total_net_input_bytes"] - before[1]["total_net_input_bytes"]
    tx = after[1]["total_net_output_bytes"] - before[1]["total_net_output_bytes"]
    await f.close()
    await c.close()
    return {"pages": done, "seconds": elapsed, "scripts_per_page": scripts / done,
            "redis_us_per_page": usec / done, "bytes_per_page": (rx + tx) / done,
            "cpu_us_per_page": cpu / done * 1e6}


def main() -> None:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    latency = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    baseline = "--baseline" in sys.argv
    with RedisServer() as server:
        r = asyncio.run(crawl(server.url, pages, concurrency, latency, baseline))
    print(f"{r['pages']:,} pages, concurrency {concurrency}, fetches of {latency * 1000:.0f} ms "
          f"on average: {r['pages'] / r['seconds']:,.0f} "
          f"pages/s; {r['scripts_per_page']:.3f} scripts (round trips) a page; "
          f"{r['redis_us_per_page']:.1f} us of Redis CPU a page, {r['cpu_us_per_page']:.0f} us "
          "of the worker's; "
          f"{r['bytes_per_page']:.0f} bytes a page")


if __name__ == "__main__":
    main()
