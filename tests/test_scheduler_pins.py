"""The scheduler's promises, pinned in-process (``core/politeness.py``; make
mutate found them reached only through whole crawls, docs/testing.md): the
page budget exact, with the places given back by requests that never reached
the server; ``concurrency`` and ``per_host`` as the most requests in flight at
once; a retry waits its back-off (never less, at most 1.5 times), goes first
in its host's queue and is not a new page; ``stop``; what the live display
is told (``statistics``, ``busiest``); leasing in batches.

A real ``Scheduler`` over a real ``MemoryFrontier``, driven by workers that
do what the engine's do (``get``, ``started``, then ``done``; a finished
request acked), with the "fetch" replaced by a wait on the loop: the
scheduler never touches the network, so there is nothing to serve."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import pytest

from loopcrawl.core.politeness import HostState, Scheduler, SchedulerStats
from loopcrawl.frontier import MemoryFrontier
from loopcrawl.http import FetchRecord, Request
from loopcrawl.urls import host_of

from .conftest import PageServer
from .helpers import run

pytestmark = pytest.mark.timeout(30)

# What a "fetch" returns: done()'s counted and backoff, or None when the
# worker scheduled a retry (then done() counts it, as the engine does).
Fetch = Callable[["Harness", Request], Awaitable[tuple[bool, float] | None]]


@dataclass
class Harness:
    sched: Scheduler
    frontier: MemoryFrontier
    fetch: Fetch
    started: list[tuple[str, float]] = field(default_factory=list)  # (url, loop time)
    in_flight: int = 0
    peak: int = 0
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    async def worker(self) -> None:
        sched, loop = self.sched, asyncio.get_running_loop()
        while (r := await sched.get()) is not None:
            counted, backoff = True, 0.0
            try:
                wait = sched.started(r)
                if wait > 0:
                    await sched.wait_turn(host_of(r.url), wait)
                self.started.append((r.url, loop.time()))
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                got = await self.fetch(self, r)
                self.in_flight -= 1
                if got is not None:
                    counted, backoff = got
                    await self.frontier.ack(r, FetchRecord(r.url, r.depth, r.referrer, 0.0))
            finally:
                sched.done(r, counted=counted, backoff=backoff)


async def start(urls: list[str], fetch: Fetch, *, concurrency: int, per_host: int,
                delay: float = 0.0, max_pages: int | None = None) -> Harness:
    f = MemoryFrontier()
    await f.add([Request(u) for u in urls])
    h: Harness

    def spawn() -> None:
        h.workers.append(asyncio.create_task(h.worker()))

    sched = Scheduler(f, concurrency=concurrency, per_host=per_host, delay=delay,
                      max_pages=max_pages, spawn=spawn)
    h = Harness(sched, f, fetch)
    return h


async def finish(h: Harness, within: float = 10.0) -> None:
    """Run the dispatcher to its end, then every worker to its None."""
    async with asyncio.timeout(within):
        await h.sched.run()
        await asyncio.gather(*h.workers)


def sleeping(seconds: float) -> Fetch:
    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        await asyncio.sleep(seconds)
        return True, 0.0
    return fetch


def urls_on(hosts: int, each: int) -> list[str]:
    return [f"http://h{i}.test/p{j}" for j in range(each) for i in range(hosts)]


@pytest.mark.parametrize("budget", [1, 5])
def test_max_pages_hands_out_exactly_the_budget(budget: int) -> None:
    async def go() -> list[str]:
        h = await start(urls_on(3, 4), sleeping(0.002), concurrency=3, per_host=2,
                        max_pages=budget)
        await finish(h)
        assert h.sched.statistics().dispatched == budget
        return [u for u, _ in h.started]

    got = asyncio.run(go())
    assert len(got) == budget == len(set(got))


def test_a_request_done_uncounted_gives_its_place_in_the_budget_back() -> None:
    """robots.txt forbade it, a trap stopped it: it never reached the server,
    so it does not spend the budget (``done(counted=False)``)."""
    urls = [f"http://h.test/free{i}" for i in range(3)] + [
        f"http://h.test/p{i}" for i in range(6)]

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        await asyncio.sleep(0)
        return "/free" not in r.url, 0.0

    async def go() -> list[str]:
        h = await start(urls, fetch, concurrency=1, per_host=1, max_pages=4)
        await finish(h)
        return [u for u, _ in h.started]

    # One host, one at a time: in queue order, the three free ones and four more.
    assert asyncio.run(go()) == urls[:7]


@pytest.mark.parametrize(("concurrency", "per_host", "hosts", "peak"),
                         [(4, 5, 10, 4), (10, 3, 1, 3), (2, 1, 3, 2), (1, 4, 4, 1)])
def test_concurrency_and_per_host_are_the_most_in_flight(
    concurrency: int, per_host: int, hosts: int, peak: int,
) -> None:
    async def go() -> tuple[int, int, int]:
        h = await start(urls_on(hosts, 6), sleeping(0.02), concurrency=concurrency,
                        per_host=per_host)
        await finish(h)
        return h.peak, len(h.started), len(h.workers)

    got_peak, fetched, workers = asyncio.run(go())
    assert got_peak == peak
    assert fetched == hosts * 6
    assert peak <= workers <= concurrency  # workers grow with the work, up to concurrency


def test_a_host_is_spaced_by_its_delay_while_others_go() -> None:
    async def go() -> dict[str, list[float]]:
        h = await start(["http://slow.test/1", "http://slow.test/2", "http://slow.test/3",
                         "http://fast.test/1", "http://fast.test/2"],
                        sleeping(0), concurrency=4, per_host=2, delay=0.0)
        h.sched.set_delay("slow.test", 0.15)
        await finish(h)
        out: dict[str, list[float]] = {}
        for u, t in h.started:
            out.setdefault(host_of(u), []).append(t)
        return out

    t = asyncio.run(go())
    gaps = [b - a for a, b in zip(t["slow.test"], t["slow.test"][1:], strict=False)]
    assert len(gaps) == 2 and all(g >= 0.15 for g in gaps), gaps
    assert t["fast.test"][1] < t["slow.test"][1]  # the other host did not wait for it


def test_a_retry_waits_its_back_off_goes_first_and_is_no_new_page() -> None:
    """``retry_later(r, 0.2)``: back no sooner than 0.2 s and no later than
    0.3 s (the jitter), ahead of its host's other requests, and the budget of
    3 still covers the three pages."""
    tries: dict[str, int] = {}
    seen_waiting: list[SchedulerStats] = []

    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        tries[r.url] = tries.get(r.url, 0) + 1
        if r.url.endswith("/a") and tries[r.url] == 1:
            h.sched.retry_later(r, 0.2)
            return None
        if r.url.endswith("/b"):
            seen_waiting.append(h.sched.statistics())
            await asyncio.sleep(0.3)  # /a's retry comes back while /b is on the wire
        return True, 0.0

    async def go() -> list[tuple[str, float]]:
        h = await start(["http://h.test/a", "http://h.test/b", "http://h.test/c"], fetch,
                        concurrency=1, per_host=1, max_pages=3)
        await finish(h)
        return h.started

    started = asyncio.run(go())
    assert [u.removeprefix("http://h.test") for u, _ in started] == ["/a", "/b", "/a", "/c"]
    (_, t_a), _, (_, t_again), _ = started
    assert t_again - t_a >= 0.3  # behind /b, which held the only place 0.3 s
    assert seen_waiting[0].waiting_retry == 1


def test_a_retry_keeps_its_place_once_the_budget_is_spent() -> None:
    """``max_pages=2``: /a's retry goes though the budget is spent (its first
    attempt holds its place), before c.test's page, which waits until /b,
    done uncounted, gives a place back (the hosts that waited are scheduled
    again then)."""
    tries: dict[str, int] = {}

    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        tries[r.url] = tries.get(r.url, 0) + 1
        if r.url == "http://a.test/a" and tries[r.url] == 1:
            h.sched.retry_later(r, 0.0)
            return None
        if r.url == "http://b.test/b":
            await asyncio.sleep(0.1)  # the retry comes back while /b holds a place
            return False, 0.0
        return True, 0.0

    async def go() -> list[str]:
        h = await start(["http://a.test/a", "http://b.test/b", "http://c.test/c"], fetch,
                        concurrency=3, per_host=1, max_pages=2)
        await finish(h, within=3.0)
        assert h.sched.statistics().dispatched == 2
        return [u for u, _ in h.started]

    assert asyncio.run(go()) == ["http://a.test/a", "http://b.test/b", "http://a.test/a",
                                 "http://c.test/c"]


def test_a_retry_waits_for_its_host_full_with_our_requests_under_a_spent_budget() -> None:
    """``per_host=2``, ``max_pages=3``: /a1's retry comes back while /a2 and
    /a3 hold both of its host's places and the budget is spent (no host is
    in the heap then): it goes when /a2 is done, and nothing else does. (The
    paths have two segments: the host is the URL's third part from the left.)"""

    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        if r.url.endswith("/a1") and r.retries == 0:
            r.retries = 1
            h.sched.retry_later(r, 0.02)
            return None
        await asyncio.sleep(0.1)
        return True, 0.0

    async def go() -> list[str]:
        h = await start([f"http://a.test/d/a{i}" for i in range(1, 5)], fetch, concurrency=3,
                        per_host=2, max_pages=3)
        await finish(h, within=3.0)
        assert h.sched.statistics().dispatched == 3
        return [u for u, _ in h.started]

    assert asyncio.run(go()) == ["http://a.test/d/a1", "http://a.test/d/a2",
                                 "http://a.test/d/a3", "http://a.test/d/a1"]


@pytest.mark.parametrize(("concurrency", "hold"), [(2, 0.5), (1, 0.4)])
def test_a_retry_under_a_spent_budget_goes_at_its_hosts_turn(concurrency: int,
                                                             hold: float) -> None:
    """/a is throttled (its next turn 0.25 s after its start) and retried at
    once; /b spends the budget and holds a place ``hold`` seconds; 20 other
    hosts wait with a page each. The retry starts at its host's turn (a
    timer, ``concurrency=2``) or, every place taken, at /b's ``done()``; the
    dispatcher sleeps meanwhile: a handful of turns (its timer floored at
    "now" woke it every half millisecond until the retry went, 20 to 40
    turns here; one turn per waiting host taken off the heap is 20 more)."""

    class Turns(asyncio.Event):
        """The dispatcher's wake-up event, counting its waits (its turns)."""
        n = 0

        async def wait(self) -> Literal[True]:
            Turns.n += 1
            return await super().wait()

    async def go() -> float:
        async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
            if r.url.endswith("/a") and r.retries == 0:
                r.retries = 1
                h.sched.throttled("a.test")
                h.sched.retry_later(r, 0.0)
                return None
            if r.url.endswith("/b"):
                await asyncio.sleep(hold)
            return True, 0.0

        h = await start(["http://a.test/a", "http://b.test/b",
                         *(f"http://h{i}.test/" for i in range(20))], fetch,
                        concurrency=concurrency, per_host=1, max_pages=2)
        h.sched._wake = Turns()
        await finish(h, within=3.0)
        got = [u for u, _ in h.started]
        assert sorted(got) == ["http://a.test/a", "http://a.test/a", "http://b.test/b"]
        first, again = (t for u, t in h.started if u.endswith("/a"))
        return again - first

    waited = asyncio.run(go())
    due = 0.25 if concurrency == 2 else hold
    assert due <= waited < due + 0.1, waited
    assert Turns.n <= 10, Turns.n


def test_the_crawl_waits_for_a_page_leased_elsewhere() -> None:
    """A page of the frontier leased by another consumer (another process of
    a shared frontier) keeps the crawl going once this scheduler holds
    nothing: it ends only when the frontier is finished, and fetches the page
    the other consumer added meanwhile."""

    async def go() -> list[str]:
        h = await start(["http://a.test/1", "http://a.test/2"], sleeping(0.0), concurrency=1,
                        per_host=1)
        (other,) = await h.frontier.lease(1)
        runner = asyncio.create_task(finish(h, within=3.0))
        await asyncio.sleep(0.1)
        assert not runner.done() and len(h.started) == 1
        await h.frontier.add([Request("http://a.test/3")])
        await h.frontier.ack(other, FetchRecord(other.url, other.depth, other.referrer, 0.0))
        await runner
        return [other.url] + [u for u, _ in h.started]

    assert asyncio.run(go()) == ["http://a.test/1", "http://a.test/2", "http://a.test/3"]


def test_the_retry_back_off_is_between_after_and_one_and_a_half_times_it() -> None:
    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        if len(h.started) == 1:
            h.sched.retry_later(r, 0.2)
            return None
        return True, 0.0

    async def go() -> list[float]:
        h = await start(["http://h.test/a"], fetch, concurrency=2, per_host=2)
        await finish(h)
        assert h.sched.statistics().waiting_retry == 0
        return [t for _, t in h.started]

    for _ in range(3):  # the jitter is random: three draws
        first, again = asyncio.run(go())
        assert 0.2 <= again - first <= 0.3 + 0.1, again - first


def test_stop_dispatches_nothing_more_and_unleased_gives_the_rest() -> None:
    async def go() -> tuple[int, list[str], SchedulerStats]:
        h = await start(urls_on(1, 6), sleeping(0), concurrency=2, per_host=1, delay=5.0)
        runner = asyncio.create_task(finish(h))
        while not h.started:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        h.sched.stop()
        await asyncio.wait_for(runner, 1.0)  # at once, not after the 5 s delay
        rest = [r.url for r in h.sched.unleased()]
        return len(h.started), rest, h.sched.statistics()

    n, rest, stats = asyncio.run(go())
    assert n == 1
    assert rest == [f"http://h0.test/p{j}" for j in range(1, 6)]
    assert (stats.buffered, stats.in_flight, stats.dispatched) == (0, 0, 1)


def test_statistics_and_busiest_tell_what_each_host_does() -> None:
    """The live display's view, at a moment the test sets up: ``a`` fetching
    two (and one queued), ``d`` queued behind ``concurrency``, ``c`` backing
    off after a 503's Retry-After, ``b`` waiting on its Crawl-delay, ``e``
    idle; ordered by in flight, then queued."""
    hold = asyncio.Event()

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        host = host_of(r.url)
        if host == "a.test":
            await hold.wait()
        return True, (30.0 if host == "c.test" else 0.0)

    urls = (["http://e.test/1", "http://b.test/1", "http://b.test/2", "http://c.test/1"]
            + [f"http://c.test/{i}" for i in (2, 3)] + ["http://d.test/1"]
            + [f"http://a.test/{i}" for i in (1, 2, 3)] + [f"http://d.test/{i}" for i in (2, 3, 4)])

    async def go() -> tuple[list[HostState], list[HostState], SchedulerStats, dict[str, int]]:
        h = await start(urls, fetch, concurrency=2, per_host=2)
        h.sched.set_delay("b.test", 30.0)
        h.sched.claim("hop.test")  # a redirect hop's host: known to the gate, never queued
        runner = asyncio.create_task(finish(h, 20.0))
        while h.in_flight < 2 or sum(1 for u, _ in h.started if "a.test" in u) < 2:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        top = h.sched.busiest(6)
        top2 = h.sched.busiest(2)
        stats = h.sched.statistics()
        fetched: dict[str, int] = {}
        for u, _ in h.started:
            fetched[host_of(u)] = fetched.get(host_of(u), 0) + 1
        h.sched.stop()
        hold.set()
        await runner
        return top, top2, stats, fetched

    top, top2, stats, fetched = asyncio.run(go())
    total = {x: sum(1 for u in urls if host_of(u) == x)
             for x in [*(f"{c}.test" for c in "abcde"), "hop.test"]}
    queued = {x: total[x] - fetched.get(x, 0) for x in total}
    assert queued["a.test"] == 1 and queued["e.test"] == 0
    assert queued["b.test"] == 1 and queued["c.test"] >= 1 and queued["d.test"] >= 1
    want = {"a.test": ("fetching", 2), "b.test": ("waiting on delay", 0),
            "c.test": ("backing off", 0), "d.test": ("queued", 0), "e.test": ("idle", 0),
            "hop.test": ("idle", 0)}
    assert {s.host: (s.state, s.in_flight) for s in top} == want
    for s in top:
        assert s.queued == queued[s.host], s
    keys = [(s.in_flight, s.queued) for s in top]
    assert keys == sorted(keys, reverse=True)
    assert [s.host for s in top2] == [s.host for s in top[:2]]
    b = next(s for s in top if s.host == "b.test")
    assert b.delay == 30.0
    assert stats == SchedulerStats(buffered=sum(queued.values()), in_flight=2, waiting_retry=0,
                                   hosts=6, dispatched=len(urls) - sum(queued.values()))


@pytest.mark.parametrize(("concurrency", "batch"), [(2, 256), (100, 400)])
def test_the_frontier_is_leased_in_batches(concurrency: int, batch: int) -> None:
    """``max(256, 4 × concurrency)`` at a time, again when fewer than
    ``max(64, 2 × concurrency)`` wait: a bounded working set in memory."""
    leased: list[int] = []

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        await asyncio.sleep(0)  # the dispatcher runs between two fetches
        leased.append((await h.frontier.statistics()).leased)
        return True, 0.0

    async def go() -> None:
        h = await start([f"http://h{i % 50}.test/{i}" for i in range(2000)], fetch,
                        concurrency=concurrency, per_host=1000)
        await finish(h, 20.0)

    asyncio.run(go())
    assert leased[0] == batch
    # Leased again as soon as fewer than the low water wait: at most both.
    assert max(leased) == batch + max(64, 2 * concurrency)


def test_a_hosts_delay_counts_from_robots_txts_answer(pages: PageServer) -> None:
    """robots.txt opened the connection and took 0.5 s to answer: the first
    page waits the 0.3 s delay from the answer, not from the request (the
    server saw nothing of the handshakes before it answered)."""
    pages.add("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain",
              delay=0.5)
    pages.add("/")
    run(pages.url + "/", delay=0.3)
    robots, page = pages.log
    assert (robots.path, page.path) == ("/robots.txt", "/")
    # (10 ms: the event loop runs a timer up to its clock's resolution early,
    # and the server notes its end a moment before the client reads it.)
    assert page.start - robots.end >= 0.3 - 0.01


def test_the_heartbeat_forgets_the_leases_it_no_longer_holds() -> None:
    """Leases that expire are extended while held; once a request is acked,
    the next heartbeat hears it is no longer held and forgets it, so the
    heartbeat does not grow with the crawl."""
    hold = asyncio.Event()

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        if r.url.endswith("/slow"):
            await hold.wait()
        return True, 0.0

    async def go() -> tuple[int, int]:
        f = MemoryFrontier(lease_ttl=0.15)
        await f.add([Request(f"http://h{i}.test/") for i in range(20)]
                    + [Request("http://h.test/slow")])
        h: Harness

        def spawn() -> None:
            h.workers.append(asyncio.create_task(h.worker()))

        h = Harness(Scheduler(f, concurrency=4, per_host=1, delay=0.0, spawn=spawn), f, fetch)
        runner = asyncio.create_task(finish(h))
        await asyncio.sleep(0.5)  # ten heartbeats, three times the ttl
        # named, for a dump of a hung crawl's tasks
        assert "loopcrawl-lease-heartbeat" in {t.get_name() for t in asyncio.all_tasks()}
        held = len(h.sched._held or {})
        expired = (await f.statistics()).expired
        hold.set()
        await runner
        return held, expired

    held, expired = asyncio.run(go())
    assert (held, expired) == (1, 0)  # /slow only, and it never expired


def test_the_crawl_waits_for_every_retry_under_a_budget() -> None:
    """Two pages, a budget of two, both retried at once (0.1 s and 0.3 s): the
    budget is not spent by the retries, and the crawl ends only when both
    have come back."""

    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        if r.retries == 0:
            r.retries = 1
            h.sched.retry_later(r, 0.1 if r.url.endswith("/a") else 0.3)
            return None
        return True, 0.0

    async def go() -> list[str]:
        h = await start(["http://a.test/a", "http://b.test/b"], fetch, concurrency=2,
                        per_host=1, max_pages=2)
        await finish(h)
        return [u for u, _ in h.started]

    assert sorted(asyncio.run(go())) == ["http://a.test/a"] * 2 + ["http://b.test/b"] * 2


def test_a_retry_takes_its_page_back_from_a_spent_budget() -> None:
    """``max_pages=1`` and the one page retried: it is fetched again (the
    budget gave its place back), and nothing else is."""

    async def fetch(h: Harness, r: Request) -> tuple[bool, float] | None:
        if r.retries == 0:
            r.retries = 1
            h.sched.retry_later(r, 0.05)
            return None
        return True, 0.0

    async def go() -> list[str]:
        h = await start(["http://h.test/a", "http://h.test/b"], fetch, concurrency=1,
                        per_host=1, max_pages=1)
        await finish(h)
        return [u for u, _ in h.started]

    assert asyncio.run(go()) == ["http://h.test/a", "http://h.test/a"]


def test_workers_grow_with_the_work_in_flight_not_with_the_setting() -> None:
    """A worker is started only when a request waits and no idle worker can
    take it: one host, one place, ``concurrency=20``: two workers (the one
    that hands its place on in ``done()`` is not idle yet). Then, with workers
    idle (each woken and idle again several times) and one holding a request,
    six hosts' requests arrive at once (added to the frontier from elsewhere):
    the idle ones take what they can, the rest get new workers, and all seven
    are in flight together."""

    async def sequential() -> int:
        h = await start(urls_on(1, 8), sleeping(0.005), concurrency=20, per_host=1)
        await finish(h)
        assert h.peak == 1 and len(h.started) == 8
        return len(h.workers)

    assert asyncio.run(sequential()) == 2

    hold = asyncio.Event()

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        if r.url == "http://hold.test/":
            await hold.wait()
        elif r.url.startswith("http://burst"):
            await asyncio.sleep(0.3)  # long enough for the whole burst to be on the wire
        else:
            await asyncio.sleep(0.005)
        return True, 0.0

    async def bursts() -> list[tuple[int, int]]:
        h = await start(["http://hold.test/", *urls_on(1, 4)], fetch, concurrency=10,
                        per_host=1)
        runner = asyncio.create_task(finish(h))
        loop = asyncio.get_running_loop()
        seen: list[tuple[int, int]] = []  # (workers, the most in flight) after each phase
        async with asyncio.timeout(10):
            while len(h.started) < 5 or h.in_flight > 1:  # h0's four done, one by one
                await asyncio.sleep(0.005)
            seen.append((len(h.workers), h.peak))
            for n in (6, 7):
                before, added = len(h.started), loop.time()
                await h.frontier.add([Request(f"http://burst{n}-{i}.test/") for i in range(n)])
                while len(h.started) < 5 + 6 + (n == 7) * 7 or h.in_flight > 1:
                    await asyncio.sleep(0.005)
                # Found by the dispatcher's look at the frontier every 50 ms
                # while it holds less than it asked for (nothing else wakes it).
                assert h.started[before][1] - added < 0.5
                seen.append((len(h.workers), h.peak))
            hold.set()
            await runner
        return seen

    # 2 in flight at first (3 workers: the first hand-over starts one, which
    # then takes turns with the other); then 1 + 6 in flight: 4 more; then
    # 1 + 7: 1 more.
    assert asyncio.run(bursts()) == [(3, 2), (7, 7), (8, 8)]


def test_a_worker_cancelled_after_its_wake_up_passes_the_work_on() -> None:
    """``done()`` fills the freed place at once (before the worker that calls
    it asks again) and wakes an idle worker for it; if that worker is
    cancelled before it runs, the next idle one is woken instead: no request
    waits for a wake-up that never comes. ``done()`` without arguments counts
    the page and keeps no back-off."""

    async def go() -> None:
        f = MemoryFrontier()
        await f.add([Request("http://h.test/1"), Request("http://h.test/2")])
        sched = Scheduler(f, concurrency=2, per_host=1, delay=0.0)  # no spawn: ours
        runner = asyncio.create_task(sched.run())
        async with asyncio.timeout(5):
            r1 = await sched.get()
            assert r1 is not None and r1.url == "http://h.test/1"
            w2 = asyncio.create_task(sched.get())
            w3 = asyncio.create_task(sched.get())
            await asyncio.sleep(0.02)  # both waiting
            assert sched.statistics().in_flight == 1
            sched.done(r1)
            # /2 is dispatched by done() itself, not at the dispatcher's next turn
            stats = sched.statistics()
            assert (stats.in_flight, stats.buffered, stats.dispatched) == (1, 0, 2)
            w2.cancel()
            r2 = await asyncio.wait_for(w3, 1.0)
            assert r2 is not None and r2.url == "http://h.test/2"
            assert w2.cancelled()
            sched.stop()
            sched.done(r2)
            await runner

    asyncio.run(go())


def test_a_hosts_next_turn_comes_on_time_with_nothing_else_going_on() -> None:
    """One host, ``--delay`` 0.2 s, 300 requests (a full lease: the dispatcher
    does not look at the frontier again) and a budget of 4: nothing wakes the
    dispatcher between two requests but its own timer for the host's next
    turn, set for that turn (not sooner), and each start comes 0.2 s after
    the one before, not later."""

    async def go() -> tuple[list[float], float]:
        h = await start([f"http://h.test/{i}" for i in range(300)], sleeping(0), concurrency=2,
                        per_host=1, delay=0.2, max_pages=4)
        cpu = time.thread_time()
        await finish(h)
        return [t for _, t in h.started], time.thread_time() - cpu

    times, cpu = asyncio.run(go())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4
    assert all(0.2 - 0.01 <= g < 0.2 + 0.4 for g in gaps), gaps
    # asleep until then: 0.6 s of waking every half millisecond costs 20-40 ms
    assert cpu < 0.01, cpu


@pytest.mark.parametrize(("concurrency", "max_pages"), [(2, 1), (1, None)])
def test_the_dispatcher_sleeps_while_nothing_can_go(concurrency: int,
                                                    max_pages: int | None) -> None:
    """The budget spent, or every place of ``concurrency`` taken, and the last
    request in flight for a second (a slow server: up to the timeouts): the
    dispatcher waits for its ``done()``, though the other host is due. With
    the budget spent it used to wake every half millisecond (a bug: 6% of a
    core); 30 to 60 ms of CPU a second here when it does."""

    async def go() -> tuple[float, list[str]]:
        hold = asyncio.Event()

        async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
            if r.url == "http://a.test/":
                await hold.wait()
            return True, 0.0

        h = await start(["http://a.test/", "http://b.test/"], fetch, concurrency=concurrency,
                        per_host=1, max_pages=max_pages)
        runner = asyncio.create_task(finish(h))
        async with asyncio.timeout(5):
            while not h.started:
                await asyncio.sleep(0.005)
        cpu = time.thread_time()
        await asyncio.sleep(1.0)
        cpu = time.thread_time() - cpu
        assert [u for u, _ in h.started] == ["http://a.test/"]
        hold.set()
        await runner
        return cpu, [u for u, _ in h.started]

    cpu, started = asyncio.run(go())
    assert started == ["http://a.test/"] + (["http://b.test/"] if max_pages is None else [])
    # (every place taken, it looks at the frontier every 50 ms: 2-6 ms a second)
    assert cpu < 0.015, cpu


def test_a_turn_taken_while_the_host_waits_moves_its_start_exactly() -> None:
    """Each page's redirect hop (``claim``) takes the host's next turn after
    the page is done, while the host's next request already waits for that
    turn: the request goes at the turn after (two delays after the page), no
    later. The dispatcher asks the gate again at the time it answers, not at
    its 50 ms poll for hosts full elsewhere (that is 45 ms late each time)."""
    delay = 0.055

    async def fetch(h: Harness, r: Request) -> tuple[bool, float]:
        # after this request's done(), which schedules the next one
        asyncio.get_running_loop().call_soon(h.sched.claim, "h.test")
        return True, 0.0

    async def go() -> list[float]:
        h = await start([f"http://h.test/{i}" for i in range(9)], fetch, concurrency=2,
                        per_host=1, delay=delay)
        await finish(h)
        return [t for _, t in h.started]

    gaps = sorted(b - a for a, b in itertools.pairwise(asyncio.run(go())))
    assert len(gaps) == 8 and gaps[0] >= 2 * delay - 0.01, gaps
    assert gaps[4] < 2 * delay + 0.025, gaps  # the median: a late wake-up or two allowed


def test_done_requests_are_not_kept_when_leases_do_not_expire() -> None:
    """Leases are held for extending only where they expire (``lease_ttl``):
    with the memory frontier's default, nothing in the scheduler keeps a
    request once it is done, so a crawl's memory is its working set, not
    its length (every Request object alive counted, the scheduler still
    alive)."""

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Request))

    async def go() -> tuple[Harness, int]:
        h = await start(urls_on(5, 20), sleeping(0), concurrency=4, per_host=1)
        await finish(h)
        return h, alive()

    before = alive()
    h, after = asyncio.run(go())
    assert len(h.started) == 100
    assert after <= before, (before, after)
