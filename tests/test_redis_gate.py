"""Politeness across the workers of a Redis crawl, measured at the server.

Each worker is a ``Crawler`` with its own connection, its own
``RedisHostGate`` and its own ``RedisRobots`` (what a worker process has);
they share a ``MemoryFrontier`` here so that only the gate and robots.txt go
through Redis. ``--per-host``, the delay, Retry-After and robots.txt must hold
for all of them together.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from loopcrawl.core.engine import Crawler
from loopcrawl.core.politeness import Scheduler
from loopcrawl.errors import StateError
from loopcrawl.frontier.memory import MemoryFrontier
from loopcrawl.frontier.redis import RedisCrawl, RedisHostGate
from loopcrawl.http import FetchRecord
from loopcrawl.settings import Settings

from .conftest import Hit, PageServer
from .redis_server import RedisServer
from .test_polite import JITTER, assert_polite

pytestmark = pytest.mark.timeout(90)


def arun(coro_fn: Callable[[], Awaitable[Any]], bound: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), bound))


class SmallLeases(MemoryFrontier):
    """Leases a few requests at a time, so that every worker gets some of
    the host's pages (an engine asks for 256)."""

    async def lease(self, n: int) -> list[Any]:
        return await super().lease(min(n, 3))


async def workers(redis_url: str, settings: Settings, n: int, *,
                  own: list[Settings] | None = None,
                  ) -> tuple[list[list[FetchRecord]], list[RedisHostGate], list[int]]:
    """Crawl with ``n`` workers to the end: each worker's records, its gate
    (closed), and how many robots.txt each fetched for the crawl. With
    ``own``, each worker crawls its own settings' seeds from a frontier of
    its own (work for every worker on one host, whoever leases first)."""
    shared = SmallLeases()
    crawls = [await RedisCrawl.connect(redis_url, "polite") for _ in range(n)]
    recs: list[list[FetchRecord]] = [[] for _ in range(n)]
    gates = [c.gate(f"w{i}", settings) for i, c in enumerate(crawls)]
    robots = [c.robots_store(f"w{i}") for i, c in enumerate(crawls)]
    crawlers = [Crawler(own[i] if own else settings,
                        frontier=MemoryFrontier() if own else shared, gate=g, robots=r,
                        on_record=out.append)
                for i, (g, r, out) in enumerate(zip(gates, robots, recs, strict=True))]
    try:
        await asyncio.gather(*(c.run() for c in crawlers))
    finally:
        for g in gates:
            await g.close()
        for c in crawls:
            await c.close()
    return recs, gates, [r.fetched for r in robots]


def site(pages: PageServer, n: int, delay: float = 0.0) -> list[str]:
    links = [f"/p{i}" for i in range(n)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=delay)
    return links


def test_per_host_holds_across_three_workers(redis_url: str, pages: PageServer) -> None:
    """3 places for 3 workers: never a 4th request in flight at the server,
    3 reached, every worker fetched, each page once; no round trip per page."""
    links = site(pages, 200, delay=0.01)
    settings = Settings(seeds=(pages.url + "/",), per_host=3, obey_robots=False, timeout=10.0)
    recs, gates, _ = arun(lambda: workers(redis_url, settings, 3))
    assert sorted(pages.paths()) == sorted(["/", *links])
    assert pages.peak == 3
    assert all(recs), [len(r) for r in recs]  # every worker took part
    assert sum(len(r) for r in recs) == 201

    async def left() -> Any:  # closed gates gave every place back
        c = await RedisCrawl.connect(redis_url, "polite")
        held = await c.client.hget(c.keys.gate(pages.url.split("//")[1])[0], "held")
        await c.close()
        return held

    assert arun(left) == b"0"
    assert [g.statistics().places for g in gates] == [0, 0, 0]


def test_no_round_trip_per_page_without_a_delay(redis_url: str, pages: PageServer) -> None:
    """A worker reuses its places page after page: its syncs are the
    periodic ones (4 a second), not one per page."""
    site(pages, 200, delay=0.02)
    settings = Settings(seeds=(pages.url + "/",), per_host=3, obey_robots=False, timeout=10.0)
    t0 = time.monotonic()
    _, gates, _ = arun(lambda: workers(redis_url, settings, 1))
    took = time.monotonic() - t0
    assert len(pages.log) == 201 and pages.peak == 3
    assert gates[0].syncs <= 10 + 4 * took, (gates[0].syncs, took)


def test_per_host_one_place_for_three_workers(redis_url: str, pages: PageServer) -> None:
    """The boundary: one place in all, three workers wanting it."""
    links = site(pages, 30, delay=0.02)
    settings = Settings(seeds=(pages.url + "/",), per_host=1, obey_robots=False, timeout=10.0)
    arun(lambda: workers(redis_url, settings, 3))
    assert sorted(pages.paths()) == sorted(["/", *links])
    assert pages.peak == 1


def test_delay_spaces_starts_across_workers(redis_url: str, pages: PageServer) -> None:
    """--delay 0.2 with three workers: the starts at the server are 0.2 s
    apart whichever worker made them (measured from the second: the first
    also opened a connection)."""
    settings = Settings(per_host=4, delay=0.2, obey_robots=False, timeout=10.0)
    own = []
    for w in range(3):  # each worker its own four pages, all on one host
        paths = [f"/w{w}p{i}" for i in range(4)]
        for p in paths:
            pages.add(p)
        own.append(settings.replace(seeds=tuple(pages.url + p for p in paths)))
    recs, _, _ = arun(lambda: workers(redis_url, settings, 3, own=own))
    assert len(pages.log) == 12 and all(len(r) == 4 for r in recs)
    starts = sorted(h.start for h in pages.log)[1:]
    assert_polite(starts, 0.2)
    # ... and no slower than the delay: 10 gaps in little more than 10 delays.
    assert starts[-1] - starts[0] < 10 * 0.2 + 0.6


def test_robots_txt_fetched_once_and_its_crawl_delay_shared(redis_url: str,
                                                           pages: PageServer) -> None:
    """Three workers, each with pages of its own on one host: one robots.txt
    fetch in all, and its rules and its Crawl-delay hold for every worker."""
    pages.add("/robots.txt", body="User-agent: *\nCrawl-delay: 0.2\nDisallow: /private\n",
              content_type="text/plain")
    settings = Settings(per_host=4, timeout=10.0)
    own = []
    for w in range(3):
        paths = [f"/w{w}p{i}" for i in range(2)]
        for p in paths:
            pages.add(p)
        own.append(settings.replace(seeds=tuple(pages.url + p for p in
                                                (*paths, f"/private{w}"))))
    recs, _, fetched = arun(lambda: workers(redis_url, settings, 3, own=own))
    hits = Counter(pages.paths())
    assert hits["/robots.txt"] == 1 and sum(fetched) == 1
    assert len(hits) == 7 and not any(p.startswith("/private") for p in hits)
    for w, out in enumerate(recs):  # every worker read the rules
        assert [r.url for r in out if r.error == "robots_denied"] == [f"{pages.url}/private{w}"]
    assert_polite(sorted(h.start for h in pages.log if h.path != "/robots.txt")[1:], 0.2)


def one_bad_answer(redis_url: str, pages: PageServer, bad: web.Response) -> Hit:
    """Three workers crawl 60 pages (20 ms each, 3 places); the first fetch
    of /p5 gets ``bad``, its retry a page. Returns the hit that got ``bad``."""
    served: Counter[str] = Counter()

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path
        served[path] += 1
        if path == "/":
            body = "".join(f'<a href="/p{i}">x</a>' for i in range(60))
            return web.Response(text=body, content_type="text/html")
        await asyncio.sleep(0.02)
        if path == "/p5" and served[path] == 1:
            return bad
        return web.Response(text="ok", content_type="text/html")

    pages.handler = handler
    settings = Settings(seeds=(pages.url + "/",), per_host=3, obey_robots=False,
                        timeout=10.0, retry_backoff=0.01)
    arun(lambda: workers(redis_url, settings, 3))
    assert served["/p5"] == 2 and len(served) == 61
    return next(h for h in pages.log if h.path == "/p5")


def test_retry_after_pauses_the_host_for_every_worker(redis_url: str,
                                                      pages: PageServer) -> None:
    """One worker gets 503 with Retry-After: 1; within a sync (0.25 s) no
    worker starts a request on the host until the second is over."""
    hit503 = one_bad_answer(redis_url, pages, web.Response(status=503,
                                                           headers={"Retry-After": "1"}))
    quiet_from, quiet_to = hit503.end + 0.25 + JITTER, hit503.end + 1.0 - JITTER
    during = [round(h.start - hit503.end, 3) for h in pages.log
              if quiet_from < h.start < quiet_to]
    assert not during, during
    # The pages after it came after the second, not all before the 503.
    assert sum(h.start >= hit503.end + 1.0 - JITTER for h in pages.log) >= 10


# A worker holding both places of a host, killed with SIGKILL.
_HOLDER = """
import asyncio, sys
from loopcrawl.frontier.redis import RedisCrawl
async def main():
    c = await RedisCrawl.connect(sys.argv[1], "polite")
    g = c.gate("doomed", __import__("loopcrawl").Settings(per_host=2), ttl=1.5)
    loop = asyncio.get_running_loop()
    n = 0
    while n < 2:
        if g.try_start("h:80", loop.time(), n + 1) == 0.0:
            n += 1
        await asyncio.sleep(0.005)
    print("holding", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_a_dead_workers_places_come_back_after_their_deadline(redis_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, redis_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        holder.kill()
        holder.wait(10)
        killed = time.monotonic()

        async def wait_for_place() -> float:
            c = await RedisCrawl.connect(redis_url, "polite")
            async with c.gate("heir", Settings(per_host=2)) as g:
                loop = asyncio.get_running_loop()
                while (wait := g.try_start("h:80", loop.time(), 1)) != 0.0:
                    await asyncio.sleep(min(0.01, max(0.0, wait - loop.time())) or 0.005)
                    if time.monotonic() - killed < 1.0:
                        assert g.slot("h:80").held == 0  # type: ignore[union-attr]
            await c.close()
            return time.monotonic() - killed

        took = arun(wait_for_place)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    # Its deadline was 1.5 s after its last sync (every 0.25 s) before the kill.
    assert 1.5 - 0.25 - JITTER <= took <= 1.5 + 0.5, took


def test_robots_claim_of_a_dead_worker_expires(redis_url: str) -> None:
    """A worker that claimed a host's robots.txt and died: the others wait
    for the claim to expire, then one fetches."""
    async def go() -> tuple[str, float, int]:
        c = await RedisCrawl.connect(redis_url, "polite")
        _, claim = c.keys.robots("h:80")
        await c.client.set(claim, "dead:1", px=600)
        store = c.robots_store("w1")
        t0 = time.monotonic()

        async def fetch() -> tuple[str, float | None]:
            return "User-agent: *\nDisallow: /x\n", None

        got = await store.robots_once("h:80", fetch)
        took = time.monotonic() - t0
        again = await c.robots_store("w2").robots_once("h:80", fetch)  # kept: no fetch
        assert again == got
        await c.close()
        return got, took, store.fetched

    got, took, fetched = arun(go)
    assert got.startswith("User-agent") and fetched == 1
    assert 0.6 - JITTER <= took <= 0.6 + 0.4, took


def test_a_restarted_redis_pauses_the_gate_and_the_crawl_completes(pages: PageServer) -> None:
    """Redis goes down for a second mid-crawl (append-only file on): the
    workers pause, reconnect, and finish; the limit held throughout."""
    links = site(pages, 80, delay=0.03)
    settings = Settings(seeds=(pages.url + "/",), per_host=2, obey_robots=False, timeout=10.0)
    down: list[float] = []

    def restart() -> None:
        server.stop()
        down.append(time.monotonic())
        time.sleep(1.0)
        server.start()

    with RedisServer(persist=True) as server:
        async def go() -> Any:
            job = asyncio.create_task(workers(server.url, settings, 2))
            while len(pages.log) < 20:
                await asyncio.sleep(0.01)
            await asyncio.get_running_loop().run_in_executor(None, restart)
            return await job

        recs, _, _ = arun(go)
    assert sorted(pages.paths()) == sorted(["/", *links])
    assert pages.peak <= 2
    assert sum(len(r) for r in recs) == 81
    # The pause shows at the server: a worker goes on with what it was
    # granted for two syncs (0.5 s) at most, then starts nothing until
    # Redis answers again.
    late = [round(h.start - down[0], 3) for h in pages.log
            if down[0] + 0.5 + JITTER < h.start < down[0] + 1.0]
    assert not late, late
    assert any(h.start > down[0] + 1.0 for h in pages.log)


def test_reconnecting_gives_up_with_one_clear_error() -> None:
    with RedisServer() as server:
        async def go() -> None:
            c = await RedisCrawl.connect(server.url, "polite")
            c.conn.give_up = 1.0
            await c.run_command("PING")
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            t0 = time.monotonic()
            with pytest.raises(StateError, match=r"Redis at redis://127.0.0.1:\d+/0 "
                                                 r"unreachable for \d+ s .*giving up"):
                await c.run_command("PING")
            assert 1.0 <= time.monotonic() - t0 <= 1.0 + 5.0 + 1.0
            await c.close()

        arun(go)


def test_calls_made_while_redis_restarts_all_complete() -> None:
    """Writers keep calling through a restart (append-only file on): each
    call completes, in order, once Redis is back; one outage is counted."""
    with RedisServer(persist=True) as server:
        async def go() -> tuple[list[bytes | None], int, str]:
            c = await RedisCrawl.connect(server.url, "polite")

            async def writer(i: int) -> None:
                for j in range(40):
                    await c.call(lambda r, j=j: r.set(f"k{i}", j))
                    await asyncio.sleep(0.02)

            async def fetch() -> tuple[str, float | None]:
                return "User-agent: *\nDisallow: /\n", None

            loop = asyncio.get_running_loop()
            writers = [asyncio.create_task(writer(i)) for i in range(4)]
            await asyncio.sleep(0.2)
            down = loop.run_in_executor(None, lambda: server.restart(down_for=0.8))
            await asyncio.sleep(0.3)  # Redis is down now: this waits for it
            robots = await c.robots_store("w1").robots_once("h:80", fetch)
            await down
            await asyncio.gather(*writers)
            values = [await c.call(lambda r, i=i: r.get(f"k{i}")) for i in range(4)]
            outages = c.conn.outages
            await c.close()
            return values, outages, robots

        values, outages, robots = arun(go)
    assert values == [b"39"] * 4
    assert outages == 1
    assert robots.startswith("User-agent")


def test_the_gate_script_run_twice_changes_nothing_more(redis_url: str) -> None:
    """A sync repeated after a dropped connection: the places are a target
    and the events carry a sequence number, so the second run adds nothing."""
    from loopcrawl.frontier.redis import _gate_lua

    async def go() -> tuple[list[int], list[int]]:
        c = await RedisCrawl.connect(redis_url, "polite")
        script = c.client.register_script(_gate_lua.SYNC)
        keys = list(c.keys.gate("h:80"))
        # worker, per_host 4, delay 0, ttl 30 s, window 1 s, throttle 250..30000 ms;
        # seq 7, target 3, no turn, no claim, back-off 2 s, one throttle, no
        # success, no Crawl-delay, not answered.
        args = ["w1", 4, 0, 30000, 1000, 250, 30000, 7, 3, 0, 0, 2000, 1, 0, 0, 0]
        first = [int(v) for v in await c.run(script, keys, args)]
        second = [int(v) for v in await c.run(script, keys, args)]
        # An idle host's state goes after an hour: memory for active hosts only.
        ttl = await c.client.pttl(keys[0])
        assert 3_590_000 < ttl <= 3_600_000, ttl
        await c.close()
        return first, second

    first, second = arun(go)
    # places held, share, others waiting, delay, base, until (ms)
    assert first[1:6] == second[1:6] == [3, 4, 0, 250, 0]
    assert second[6] == first[6] >= first[0] + 2000


def test_a_gate_that_cannot_sync_stops_the_crawl_instead_of_waiting(redis_url: str) -> None:
    """A script error (here a key of the wrong type) is not retried: the next
    question raises ``StateError`` (one line), no dispatcher waits for ever."""
    async def go() -> None:
        c = await RedisCrawl.connect(redis_url, "polite")
        await c.client.set(c.keys.gate("h:80")[0], "not a hash")
        gate = c.gate("w1", Settings(per_host=2))
        loop = asyncio.get_running_loop()
        with pytest.raises(StateError, match="the host gate's sync failed: ResponseError"):
            for _ in range(500):
                gate.try_start("h:80", loop.time(), 1)
                await asyncio.sleep(0.01)
        with pytest.raises(StateError):
            await gate.take_turn("h:80", loop.time())
        await gate.close()
        await c.close()

    arun(go)


def test_a_429_slows_every_worker_down(redis_url: str, pages: PageServer) -> None:
    """One worker gets 429 without Retry-After: the host's delay (0.25 s,
    then decaying by successes) holds for every worker from the next sync."""
    hit429 = one_bad_answer(redis_url, pages, web.Response(status=429))
    after = sorted(h.start for h in pages.log if h.start > hit429.end + 0.25 + JITTER)
    # 0.25 s, then x0.75 for each success: three gaps of at least 0.25 x
    # 0.75^3 (0.105 s; seen: 0.105, 0.10, 0.18), far from the 20 ms a page
    # takes with three workers sharing three places. Their sum: one start
    # seen late on a loaded machine shortens the gap after it, not the span.
    gaps = [b - a for a, b in itertools.pairwise(after[:4])]
    assert after[3] - after[0] >= 3 * 0.25 * 0.75 ** 3 - JITTER, gaps


def test_a_turn_missed_by_more_than_its_slack_is_given_up_once(redis_url: str) -> None:
    """A turn asked for and then taken much later (the loop woke late) is
    given up for a new one; the next is taken however late, so the host
    makes progress."""
    async def go() -> list[float]:
        c = await RedisCrawl.connect(redis_url, "polite")
        gate = c.gate("w1", Settings(per_host=2, delay=0.1))
        loop = asyncio.get_running_loop()

        async def turn() -> None:  # a place and a turn held, not taken
            while (s := gate.slot("h:80")) is None or s.turn_at is None:  # type: ignore[attr-defined]
                await asyncio.sleep(0.005)

        gate.try_start("h:80", loop.time(), 0)  # asks for a place and a turn
        got = []
        await turn()
        # 0.2 s late (the slack is 25 ms): given up for a new one ...
        got.append(gate.try_start("h:80", gate.slot("h:80").turn_at + 0.2, 1))  # type: ignore[union-attr]
        await turn()
        # ... and late again: taken this time.
        got.append(gate.try_start("h:80", gate.slot("h:80").turn_at + 0.2, 2))  # type: ignore[union-attr]
        await gate.close()
        await c.close()
        return got

    late, taken = arun(go)
    assert late != 0.0 and taken == 0.0


def test_a_turn_taken_on_a_closed_gate_comes_at_once(redis_url: str) -> None:
    """Once the gate is closed (the crawl over: its places given back), a
    redirect hop or robots.txt of a request still finishing asks the server
    for nothing: ``Scheduler.wait_turn`` returns at once, the host's delay no
    longer kept (nothing else will start there)."""
    async def go() -> float:
        c = await RedisCrawl.connect(redis_url, "polite")
        gate = c.gate("w1", Settings(per_host=2, delay=5.0))
        sched = Scheduler(MemoryFrontier(), concurrency=2, per_host=2, delay=5.0, gate=gate)
        await gate.close()
        loop = asyncio.get_running_loop()
        assert sched.claim("h:80") == float("inf")  # a delay: the turn is the server's
        t0 = loop.time()
        await sched.wait_turn("h:80")
        took = loop.time() - t0
        await c.close()
        return took

    assert arun(go, 10) < 1.0
