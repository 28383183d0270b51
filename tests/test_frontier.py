"""The frontiers in-process: the compact seen set, the SQLite frontier's
checkpoint semantics (what a kill keeps and what it drops), and a simulated
crawl killed at random points between and during checkpoints."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from loopcrawl import Settings, crawl
from loopcrawl.core.engine import Crawler
from loopcrawl.core.hostgate import THROTTLE_MAX_DELAY, THROTTLE_MIN_DELAY, LocalHostGate
from loopcrawl.errors import StateError
from loopcrawl.frontier import MemoryFrontier
from loopcrawl.frontier.seen import SeenSet
from loopcrawl.frontier.sqlite import SqliteFrontier
from loopcrawl.http import FetchRecord, Request
from loopcrawl.outputs import JsonlWriter, SqliteWriter

from .conftest import PageServer
from .helpers import by_url, run

pytestmark = pytest.mark.timeout(60)


def rec(r: Request, error: str | None = None) -> FetchRecord:
    return FetchRecord(r.url, r.depth, r.referrer, 0.0, final_url=r.url, status=200, error=error)


def test_seen_set_agrees_with_set() -> None:
    rng = random.Random(5)
    ref: set[int] = set()
    s = SeenSet()
    values = [rng.getrandbits(64) for _ in range(60_000)]
    values += [0, 1, 2**64 - 1, 2**63, 2**56, 2**56 - 1] * 2  # edges, each twice
    values += rng.sample(values, 5_000)  # repeats
    for v in values:
        assert s.add(v) == (v not in ref)
        ref.add(v)
    assert len(s) == len(ref)
    assert sorted(s) == sorted(ref)
    assert all(v in s for v in rng.sample(values, 2_000))
    assert not any(rng.getrandbits(64) | 1 << 62 in s for _ in range(2_000))
    assert s.nbytes() / len(s) < 40  # the budget: under 40 bytes of RAM per URL
    assert SeenSet(expected=100_000).update(values) == len(ref)


async def _fill(f: SqliteFrontier, n: int, prefix: str = "http://h/p") -> list[Request]:
    reqs = [Request(f"{prefix}{i}", i % 3, referrer="http://h/",
                    meta={"k": i} if i % 5 == 0 else None) for i in range(n)]
    assert await f.add(reqs) == n
    return reqs


def test_sqlite_frontier_keeps_exactly_the_last_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def first() -> None:
        f = SqliteFrontier(db)
        await _fill(f, 10)
        got = await f.lease(4)
        assert [r.url for r in got] == [f"http://h/p{i}" for i in range(4)]
        await f.ack(got[0], rec(got[0]))
        await f.ack(got[1], rec(got[1], error="http_status"))
        await f.checkpoint(None)  # p0 done, p1 failed, p2 p3 leased, p4.. queued
        await f.ack(got[2], rec(got[2]))  # after the checkpoint: dropped by the "kill"
        await f.add([Request("http://h/late")])
        await f.close()

    async def second() -> None:
        f = SqliteFrontier(db)
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.seen) == (8, 0, 2, 10)
        assert not await f.add([Request("http://h/p3")])  # still seen
        assert await f.add([Request("http://h/late")]) == 1  # its add was never committed
        got = await f.lease(100)
        assert [r.url for r in got] == [f"http://h/p{i}" for i in range(2, 10)] + [
            "http://h/late"]
        p5 = got[3]
        assert (p5.depth, p5.referrer, p5.meta) == (2, "http://h/", {"k": 5})
        assert not await f.is_finished()
        for r in got:
            await f.ack(r, rec(r))
        assert await f.is_finished()
        await f.checkpoint(None)
        await f.close()

    asyncio.run(first())
    asyncio.run(second())
    assert SqliteFrontier(db).requeue_failed() == 1


def test_sqlite_frontier_priorities_and_spider_fields_survive(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    class Spiderish:
        def detail(self, response: object) -> None: ...

    async def first() -> None:
        f = SqliteFrontier(db)
        await f.add([Request("http://h/low", priority=-1), Request("http://h/plain"),
                     Request("http://h/high", priority=5, callback=Spiderish().detail,
                             errback="oops", cb_kwargs={"n": 1}, headers={"X-A": "b"},
                             cookies={"c": "d"}, auth=("u", "p"), method="POST",
                             body=b"q=1"),
                     Request("http://h/higher", priority=9)])
        await f.checkpoint(None)
        await f.close()

    async def second() -> None:
        f = SqliteFrontier(db)
        got = await f.lease(10)
        assert [r.url for r in got] == [f"http://h/{p}" for p in ("higher", "high", "plain",
                                                                    "low")]
        h = got[1]
        assert (h.callback, h.errback, h.cb_kwargs, h.headers, h.cookies, h.auth, h.method,
                h.body, h.priority) == ("detail", "oops", {"n": 1}, {"X-A": "b"},
                                        {"c": "d"}, ("u", "p"), "POST", b"q=1", 5)
        await f.close()

    asyncio.run(first())
    asyncio.run(second())

    async def lambdas() -> None:
        f = SqliteFrontier(tmp_path / "l.db")
        await f.add([Request("http://h/x", callback=lambda r: None)])
        with pytest.raises(StateError, match="not a method of the spider"):
            await f.checkpoint(None)
        await f.close()

    asyncio.run(lambdas())


def test_sqlite_frontier_release_and_claims(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def first() -> None:
        f = SqliteFrontier(db)
        _, b = await _fill(f, 2)
        got = await f.lease(2)
        await f.release(got[1])
        assert [r.url for r in await f.lease(5)] == [b.url]  # released: leased again first
        # Redirect targets claimed by a request: its own retry may claim again.
        assert await f.mark_seen(111, by=got[0])
        assert await f.mark_seen(111, by=got[0])
        assert not await f.mark_seen(111, by=got[1])
        assert await f.mark_seen(222, by=got[1])
        await f.ack(got[0], rec(got[0]))  # a's claim is kept; b is in flight
        await f.checkpoint(None)
        await f.close()

    async def second() -> None:
        f = SqliteFrontier(db)
        assert not await f.mark_seen(111)  # claimed by a request done before the kill
        assert await f.mark_seen(222)  # b's claim died with it: b will claim it again
        assert [r.url for r in await f.lease(5)] == ["http://h/p1"]
        await f.close()

    asyncio.run(first())
    asyncio.run(second())


def test_sqlite_frontier_locks_and_refuses(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteFrontier(db), pytest.raises(StateError, match="in use by another crawl"):
        SqliteFrontier(db)
    with SqliteFrontier(db) as f:  # the lock went with the first one
        assert asyncio.run(f.statistics()).queued == 0
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(StateError, match="not a loopcrawl state file"):
        SqliteFrontier(tmp_path / "x.txt")
    assert (tmp_path / "x.txt").read_text() == "hello"
    with pytest.raises(StateError, match="directory"):
        SqliteFrontier(tmp_path)
    # What a kill during the creation of a state leaves: an SQLite file without
    # a table (the creation rolled back). Nothing to protect: it is adopted.
    empty = tmp_path / "empty.db"
    con = sqlite3.connect(empty)
    con.execute("VACUUM")
    con.close()
    with SqliteFrontier(empty) as f:
        assert asyncio.run(f.statistics()).seen == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_leases_are_tokens(tmp_path: Path, kind: str) -> None:
    """Each lease is a fresh token (a released request comes back with a new
    one), and a redirect claim belongs to the request, whoever leases it."""

    async def go() -> None:
        f: MemoryFrontier | SqliteFrontier = (
            MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db"))
        assert f.lease_ttl is None
        await f.add([Request(f"http://h/{i}") for i in range(4)])
        got = await f.lease(3)
        tokens = [r.lease for r in got]
        assert len(set(tokens)) == 3 and min(tokens) > 0
        assert all(r.lease_deadline == float("inf") for r in got)
        assert await f.mark_seen(555, by=got[0])
        await f.release(got[0])
        again = await f.lease(1)
        assert again == [got[0]] and again[0].lease not in tokens
        assert await f.mark_seen(555, by=again[0])  # its claim held across the release
        assert await f.extend(got) == []  # nothing expires here
        for r in [*again, *got[1:], *await f.lease(5)]:
            assert await f.ack(r, rec(r))
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.expired) == (0, 0, 4, 0)
        assert await f.is_finished()
        await f.close()

    asyncio.run(go())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_add_links_takes_the_fingerprints_it_is_given(tmp_path: Path, kind: str) -> None:
    """The link follower hashes a page's links once (trap guard and seen
    check): ``fps`` given are the ones checked and queued, none recomputed."""
    from loopcrawl.urls import fingerprints

    async def go() -> None:
        f: MemoryFrontier | SqliteFrontier = (
            MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db"))
        urls = ["http://h/a", "http://h/b", "http://h/c"]
        await f.add([Request("http://h/x", fp=102)])  # seen: "b" is left out by its fp
        assert await f.add_links(urls, 1, "http://h/", None, [101, 102, 103]) == 2
        assert [(r.url, r.fp) for r in await f.lease(5)] == [
            ("http://h/x", 102), ("http://h/a", 101), ("http://h/c", 103)]
        assert await f.add_links(urls, 1, "http://h/") == 3  # computed: all unseen
        assert [r.fp for r in await f.lease(5)] == fingerprints(urls)
        await f.close()

    asyncio.run(go())


def test_memory_leases_expire_and_go_back_to_the_queue() -> None:
    async def go() -> None:
        f = MemoryFrontier(lease_ttl=0.2)
        await f.add([Request("http://h/a"), Request("http://h/b"),
                     Request("http://h/p", priority=3)])
        p, a, b = await f.lease(3)
        t0 = time.time()
        assert all(t0 < r.lease_deadline <= t0 + 0.2 for r in (p, a, b))
        assert await f.lease(3) == []
        await asyncio.sleep(0.12)
        assert await f.extend([a, b]) == []  # a heartbeat: a and b live on, p does not
        await asyncio.sleep(0.12)
        assert not await f.is_finished()
        st = await f.statistics()
        assert (st.queued, st.leased, st.expired) == (1, 2, 1)
        (p2,) = await f.lease(3)  # p went back to the queue, for another holder
        assert p2 is not p and (p2.url, p2.priority) == (p.url, p.priority)
        assert p2.lease != p.lease
        assert not await f.ack(p, rec(p))  # the old holder's ack changes nothing
        await f.release(p)  # nor its release
        assert await f.extend([p, a]) == [p]  # its heartbeat says it lost p
        assert await f.ack(p2, rec(p2))
        await asyncio.sleep(0.25)  # a and b expire now: nothing extended them
        assert not await f.ack(a, rec(a))
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.expired) == (2, 0, 1, 3)
        got = await f.lease(5)
        assert [r.url for r in got] == ["http://h/b", "http://h/a"] or \
            [r.url for r in got] == ["http://h/a", "http://h/b"]
        for r in got:
            assert await f.ack(r, rec(r))
        assert await f.is_finished()
        assert (await f.statistics()).done == 3

    asyncio.run(go())


def test_memory_frontier_queues_up_to_max_queued(caplog: pytest.LogCaptureFixture) -> None:
    """``max_queued`` requests wait, at most, ranked ones included; one more
    is refused, counted as ``queue_full`` and not marked seen (it is queued
    once there is room); a request given back is queued whatever the cap.
    One warning, the first time."""
    async def go() -> None:
        f = MemoryFrontier(max_queued=3)
        assert await f.add([Request("http://h/a"), Request("http://h/p", priority=2)]) == 2
        assert await f.add_links(["http://h/b", "http://h/c", "http://h/d"], 1, None) == 1
        assert f.skipped == {"queue_full": 2}
        assert (await f.statistics()).queued == 3
        assert await f.add([Request("http://h/c", dont_filter=True)]) == 0
        assert f.skipped == {"queue_full": 3}
        _, a = await f.lease(2)
        assert await f.add_links(["http://h/d", "http://h/c", "http://h/e"], 1, None) == 2
        assert f.skipped == {"queue_full": 4}
        await f.release(a)  # four waiting: past the cap, and kept
        assert (await f.statistics()).queued == 4
        assert await f.add_links(["http://h/e"], 1, None) == 0
        assert [r.url for r in await f.lease(5)] == [
            "http://h/a", "http://h/b", "http://h/d", "http://h/c"]
        assert await f.add_links(["http://h/e"], 1, None) == 1
        assert f.skipped == {"queue_full": 5}
        assert await MemoryFrontier().add_links([f"http://h/{i}" for i in range(100)], 1,
                                                None) == 100

    with caplog.at_level("WARNING", logger="loopcrawl"):
        asyncio.run(go())
    assert [r.getMessage() for r in caplog.records] == [
        "the queue holds 3 requests (max_queued): links past it are not followed until "
        "it has room (counted as queue_full)"]


class _Site:
    """A random link graph for the simulated crawl."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.urls = [f"http://h/{i}" for i in range(n)]
        self.links = {u: rng.sample(self.urls, 6) for u in self.urls}


async def _crawl_until_killed(db: Path, out: Path, site: _Site, rng: random.Random,
                              kill_after: int) -> bool:
    """Crawl with four workers and fast checkpoints; stop dead after ``kill_after``
    steps (no final checkpoint: a kill). True if the crawl finished. The output
    is JSONL or, for ``out`` ending in .db, SQLite (committing every 2 rows)."""
    f = SqliteFrontier(db, checkpoint_interval=0.002, max_buffered=20)
    (mark,) = f.bind_outputs([str(out)])
    writer: JsonlWriter | SqliteWriter
    if out.suffix == ".db":
        writer = SqliteWriter(str(out), resume_at=mark, batch=2)
    else:
        writer = JsonlWriter(str(out), resume_at=mark or 0, batch=3)
    await f.add([Request(site.urls[0])])
    ticker = asyncio.create_task(f.run_checkpoints(writer))
    steps = 0

    async def worker() -> None:
        nonlocal steps
        while steps < kill_after and not await f.is_finished():
            got = await f.lease(rng.randint(1, 3))
            if not got:
                await asyncio.sleep(0.001)
                continue
            for r in got:
                await asyncio.sleep(rng.random() * 0.002)  # "fetching"
                steps += 1
                if steps >= kill_after:
                    return  # killed with requests in flight
                if rng.random() < 0.1:
                    await f.release(r)
                    continue
                await f.add([Request(u, r.depth + 1, r.url) for u in site.links[r.url]])
                if isinstance(writer, SqliteWriter):
                    writer.write_item({"url": r.url}, "page", None)
                else:
                    writer.write({"url": r.url})
                await f.ack(r, rec(r))

    await asyncio.gather(*(worker() for _ in range(4)))
    finished = await f.is_finished()
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)
    if finished:
        await f.checkpoint(writer)
    writer.flush()  # lines past the checkpoint reach the file, as they may in a kill
    await f.close()
    writer.close()
    return finished


@pytest.mark.parametrize(("seed", "output"), [(0, "out.jsonl"), (1, "out.jsonl"),
                                              (2, "items.db"), (3, "items.db")])
def test_simulated_kills_leave_every_page_exactly_once(tmp_path: Path, seed: int,
                                                       output: str) -> None:
    rng = random.Random(seed)
    site = _Site(400, rng)
    db, out = tmp_path / "s.db", tmp_path / output
    # A run is killed at its 60th request at the latest, so it acks at most 59
    # of the 400 pages: at least 6 kills come before the run that finishes,
    # however the workers interleave (the rng's draws follow real timing).
    for kills in range(100):  # noqa: B007 (read after the loop)
        if asyncio.run(_crawl_until_killed(db, out, site, rng, rng.randint(1, 60))):
            break
    else:
        pytest.fail("the crawl did not finish")
    assert kills >= 6
    if out.suffix == ".db":
        con = sqlite3.connect(out)
        urls = [u for (u,) in con.execute("SELECT url FROM page")]
        con.close()
    else:
        urls = [orjson.loads(line)["url"] for line in out.read_bytes().splitlines()]
    reachable = {site.urls[0]}
    todo = [site.urls[0]]
    while todo:
        for u in site.links[todo.pop()]:
            if u not in reachable:
                reachable.add(u)
                todo.append(u)
    assert sorted(urls) == sorted(reachable)


class _FlakyTarget(PageServer):
    """/a redirects to /b; /b answers 503 once, then 200."""

    def __init__(self) -> None:
        super().__init__()
        self.b_hits = 0

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/a":
            return web.Response(status=301, headers={"Location": "/b"})
        if request.path == "/b":
            self.b_hits += 1
            if self.b_hits == 1:
                return web.Response(status=503)
            return web.Response(text="<title>B</title>", content_type="text/html")
        return web.Response(status=404)


@pytest.mark.parametrize("workers", [1, 2])
def test_retry_follows_its_own_redirect_again(workers: int) -> None:
    """A retry of a redirected request used to find its own redirect target
    'seen' (claimed by its first attempt) and record the 301 instead of B
    (with worker processes too: the coordinator claims for the request)."""
    with _FlakyTarget() as srv:
        recs, _ = run(srv.url + "/a", retry_backoff=0.01, obey_robots=False, workers=workers)
    a = by_url(recs)[srv.url + "/a"]
    assert (a.status, a.final_url, a.title) == (200, srv.url + "/b", "B")
    assert srv.b_hits == 2


def test_failed_means_worth_another_try() -> None:
    from loopcrawl.frontier.sqlite._rows import DONE, FAILED, state_of

    def state(error: str | None, message: str | None = None) -> int:
        return state_of(FetchRecord("http://h/", 0, None, 0.0, error=error, message=message))

    assert state(None) == DONE
    assert state("robots_denied", "forbidden by robots.txt") == DONE
    # Decided by the kind, whatever the message says.
    assert state("robots_unreachable", "forbidden by robots.txt") == FAILED
    assert state("robots_denied", "robots.txt answered 503") == DONE
    assert state("redirect_refused") == state("trap") == DONE
    assert state("http_status") == state("timeout") == state("connection_error") == FAILED
    for kind in ("connection_refused", "dns_error", "tls_error", "proxy_error", "internal_error"):
        assert state(kind) == FAILED, kind


def test_robots_txt_is_kept_across_runs(pages: PageServer, tmp_path: Path) -> None:
    """A resumed crawl reads robots.txt from the state (for 24 hours, RFC 9309
    §2.4) instead of asking each host again, and obeys the same rules."""
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /no\n", content_type="text/plain")
    pages.add("/", links=["/a", "/no"])
    pages.add("/a", links=["/b"])
    pages.add("/b")
    db = tmp_path / "s.db"
    for budget in (1, 4):
        recs: list[FetchRecord] = []
        with SqliteFrontier(db) as f:
            settings = Settings(seeds=(pages.url + "/",), max_pages=budget - f.pages_done)
            crawl(settings, frontier=f, on_record=recs.append)
    assert pages.paths().count("/robots.txt") == 1
    assert "/no" not in pages.paths()
    assert by_url(recs)[pages.url + "/no"].error == "robots_denied"
    with SqliteFrontier(db) as f:
        assert f.robots_get(pages.url.removeprefix("http://")) == "User-agent: *\nDisallow: /no\n"
        assert f.robots_get("elsewhere:80") is None


def test_a_crawl_extends_leases_that_expire(pages: PageServer) -> None:
    """With a frontier whose leases last 0.3 s, the scheduler's heartbeat
    keeps them alive through 0.5 s answers and a retry's back-off: every page
    is fetched once, no lease expires, and every one is acked."""
    pages.add("/", links=[f"/p{i}" for i in range(6)] + ["/flaky"])
    for i in range(6):
        pages.add(f"/p{i}", delay=0.5)
    pages.add("/flaky", status=503)  # answered twice: the first try and one retry
    f = MemoryFrontier(lease_ttl=0.3)
    recs: list[FetchRecord] = []
    crawl(Settings(seeds=(pages.url + "/",), retries=1, retry_backoff=0.6, obey_robots=False),
          frontier=f, on_record=recs.append)
    assert sorted(r.url.removeprefix(pages.url) for r in recs) == [
        "/", "/flaky", *[f"/p{i}" for i in range(6)]]
    assert sorted(pages.paths()) == ["/", "/flaky", "/flaky", *[f"/p{i}" for i in range(6)]]
    st = asyncio.run(f.statistics())
    assert (st.expired, st.leased, st.done) == (0, 0, 8)


def test_local_host_gate_places_turns_and_back_off() -> None:
    g = LocalHostGate(per_host=2, delay=1.0)
    assert g.ready_at("h") == 0.0
    assert g.try_start("h", 10.0, turn=1) == 0.0  # a place and the turn
    assert g.ready_at("h") == 11.0  # a place left: the delay says when
    assert g.try_start("h", 10.5, turn=2) == 11.0  # its delay: ask again at 11
    assert g.try_start("h", 11.0, turn=2) == 0.0
    assert g.try_start("h", 13.0, turn=3) == float("inf")  # both places taken
    assert g.ready_at("h") == float("inf")
    assert g.started("h", 2, 11.2) == 0.0  # its turn holds: the delay counts from now
    assert g.slot("h").next_at == 12.2  # type: ignore[union-attr]
    assert g.ready_at("h") == float("inf")
    g.finish("h", 11.5, backoff=5.0)  # Retry-After: quiet until 16.5
    assert g.ready_at("h") == 16.5
    assert g.try_start("h", 16.4, turn=3) == 16.5
    assert g.claim("h", 16.0) == 0.5  # robots.txt or a hop: the next turn, reserved
    assert g.started("h", 1, 16.0) == 1.5  # request 1's turn was spent: after the claim
    g.finish("h", 17.0)  # no back-off: the quiet time stays as it was
    assert g.slot("h") is not None and g.slot("h").active == 0  # type: ignore[union-attr]
    assert g.slot("h").throttled_until == 16.5  # type: ignore[union-attr]
    # take_turn is claim (a local gate never answers claim with inf): the turn
    # after request 1's (17.5) is at 18.5, the next at 19.5
    assert asyncio.run(g.take_turn("h", 17.0)) == 1.5
    assert g.ready_at("h") == 19.5
    g.set_delay("h", 3.0)
    g.set_delay("h", 2.0)  # never lowered
    g.relax("other")  # a host never seen: nothing to relax, no slot made
    assert g.slot("other") is None
    g.throttle("other")
    s = g.slot("other")
    assert s is not None and (s.delay, s.base_delay) == (2.0, 1.0)  # doubled
    assert (THROTTLE_MIN_DELAY, THROTTLE_MAX_DELAY) == (0.25, 30.0)
    quick = LocalHostGate(per_host=1, delay=0.0)
    assert quick.try_start("q", 5.0, turn=1) == 0.0
    quick.throttle("q")  # the raised delay counts from the last start
    assert quick.slot("q").delay == THROTTLE_MIN_DELAY  # type: ignore[union-attr]
    assert quick.slot("q").next_at == 5.25  # type: ignore[union-attr]
    for _ in range(20):
        g.throttle("other")
    assert s.delay == THROTTLE_MAX_DELAY
    for _ in range(40):
        g.relax("other")
    assert s.delay == 1.0
    # x0.75 a success, down to the base (0.05) and never below: within 0.01
    # of the base is the base (0.0593 is not kept, nor 0.0445 below it)
    small = LocalHostGate(per_host=1, delay=0.05)
    small.throttle("s")
    decay = []
    for _ in range(6):
        small.relax("s")
        decay.append(small.slot("s").delay)  # type: ignore[union-attr]
    assert decay == [0.1875, 0.140625, 0.10546875, 0.0791015625, 0.05, 0.05]
    assert {x.host for x in g.hosts()} == {"h", "other"}
    assert g.slot("h").delay == 3.0  # type: ignore[union-attr]


def test_two_crawlers_share_one_frontier_and_one_host_gate(pages: PageServer) -> None:
    """Two engines on one frontier and one gate, as two processes would be:
    each page is fetched once in all, and --per-host holds across both.
    (An engine leases up to 256 requests at a time: 300 pages give both work.)"""
    links = [f"/p{i}" for i in range(300)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=0.01)
    settings = Settings(seeds=(pages.url + "/",), per_host=2, obey_robots=False)
    frontier = MemoryFrontier(lease_ttl=5.0)
    gate = LocalHostGate(per_host=2, delay=0.0)
    recs: list[FetchRecord] = []

    async def both() -> list[int]:
        crawlers = [Crawler(settings, frontier=frontier, gate=gate, on_record=recs.append)
                    for _ in range(2)]
        done = await asyncio.gather(*(c.run() for c in crawlers))
        return [s.records for s in done]

    counts = asyncio.run(both())
    assert sorted(pages.paths()) == sorted(["/", *links])
    assert len(by_url(recs)) == 301 and sum(counts) == 301
    assert min(counts) > 0  # both took part
    assert pages.peak == 2
