"""The crawl's record in Redis and its frontier, in-process against a real
redis-server (the ``redis_url`` fixture): two ``RedisFrontier``s on one crawl
play two workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from loopcrawl.core.engine import Crawler
from loopcrawl.core.hostgate import LocalHostGate
from loopcrawl.errors import ConfigError
from loopcrawl.frontier.redis import RedisCrawl, RedisFrontier, seen_bits
from loopcrawl.http import FetchRecord, Request
from loopcrawl.settings import Settings

from .conftest import PageServer
from .helpers import by_url
from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(60)


def rec(r: Request, error: str | None = None) -> FetchRecord:
    return FetchRecord(r.url, r.depth, r.referrer, 0.0, final_url=r.url, status=200, error=error)


def arun(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 50))


async def _crawl(url: str, name: str = "t", **settings: Any) -> RedisCrawl:
    c = await RedisCrawl.connect(url, name)
    await c.create_or_add(Settings(**settings), settings.pop("seeds", ()))
    return c


def test_create_or_add_keeps_settings_and_adds_seeds(redis_url: str) -> None:
    async def go() -> None:
        c = await RedisCrawl.connect(redis_url, "news")
        assert not await c.exists()
        with pytest.raises(ConfigError, match="no crawl named 'news'"):
            await c.settings()
        s = Settings(per_host=3, delay=0.25, depth=4, max_pages=100, allow=("/a",),
                     http_auth=("u", "p"), headers={"X-A": "b"})
        assert await c.create_or_add(s, ["http://a.test/", "http://a.test/x#f"]) == 2
        assert await c.exists()
        got = await c.settings()
        assert got == s.replace(seeds=("http://a.test/", "http://a.test/x"))
        # Seeding again: the settings stay, only the new seeds are queued.
        assert await c.create_or_add(Settings(per_host=9), ["http://a.test/", "http://b.test/"]) == 1
        got = await c.settings()
        assert got.per_host == 3 and got.max_pages == 100
        assert got.seeds == ("http://a.test/", "http://a.test/x", "http://b.test/")
        st = await c.frontier("w").statistics()
        assert (st.queued, st.seen) == (3, 3)
        # Another crawl in the same Redis shares nothing.
        other = await RedisCrawl.connect(redis_url, "other")
        assert not await other.exists()
        await other.close()
        await c.close()

    arun(go)


def test_keys_carry_the_crawl_hash_tag(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url, "a.b-c_1", seeds=("http://a.test/",))
        f = c.frontier("w1")
        [r] = await f.lease(5)
        await f.add_links(["http://a.test/1"], 1, r.url)
        assert await f.ack(r, rec(r))
        await c.close()

    arun(go)
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert keys and all(k.startswith(b"lc:{a.b-c_1}:") for k in keys)


@pytest.mark.parametrize("name", ["", "a}b", "a{b", "a b", "-x", "x" * 101, "a:b"])
def test_a_bad_crawl_name_is_refused(redis_url: str, name: str) -> None:
    with pytest.raises(ConfigError, match="crawl name"):
        arun(lambda: RedisCrawl.connect(redis_url, name))


def test_a_bad_url_or_no_server_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="--redis http://x"):
        arun(lambda: RedisCrawl.connect("http://x:6379/0", "c"))
    port = free_port()
    with pytest.raises(ConfigError, match=f"cannot reach Redis at redis://u:\\*\\*\\*@127.0.0.1:{port}/0"):
        arun(lambda: RedisCrawl.connect(f"redis://u:secret@127.0.0.1:{port}/0", "c"))


def test_seen_bits_scale_with_the_expected_size() -> None:
    assert seen_bits(1_000_000) == 12  # 4,096 buckets, ~244 URLs each
    assert seen_bits(1_000) == 8
    assert seen_bits(10**9) == 22
    assert seen_bits(10**12) == 24


def test_two_workers_lease_each_url_once(redis_url: str) -> None:
    urls = [f"http://h{i % 7}.test/p{i}" for i in range(500)]

    async def go() -> None:
        c = await _crawl(redis_url, seeds=("http://h0.test/",))
        a, b = c.frontier("a"), c.frontier("b")
        assert await a.add_links(urls, 1, "http://h0.test/") == 500
        got: list[Request] = []

        async def worker(f: RedisFrontier) -> None:
            while batch := await f.lease(7):
                got.extend(batch)
                for r in batch:
                    assert await f.ack(r, rec(r))

        await asyncio.gather(worker(a), worker(b), worker(a), worker(b))
        assert sorted(r.url for r in got) == sorted([*urls, "http://h0.test/"])
        assert len({r.lease for r in got}) == len(got)  # tokens unique across workers
        assert await a.is_finished() and await b.is_finished()
        st = await b.statistics()
        assert (st.queued, st.leased, st.done, st.seen) == (0, 0, 501, 501)
        await c.close()

    arun(go)


def test_a_page_of_1000_links_of_which_990_seen_queues_10(redis_url: str) -> None:
    links = [f"http://a.test/{i}" for i in range(1000)]

    async def go() -> None:
        c = await _crawl(redis_url)
        a, b = c.frontier("a"), c.frontier("b")
        assert await a.add_links(links[:990], 1, None) == 990
        kept: list[str] = []

        def keep(urls: list[str]) -> list[str]:
            kept.extend(urls)
            return urls

        # b never sent these: the crawl's seen set answers, in one script call.
        assert await b.add_links(links, 2, "http://a.test/", keep) == 10
        assert (await b.statistics()).queued == 1000
        # What b sent once it knows itself: keep is not asked again.
        kept.clear()
        assert await b.add_links(links, 2, "http://a.test/", keep) == 0
        assert kept == []
        # keep decides among the unseen ones only.
        more = [f"http://a.test/m{i}" for i in range(4)]
        assert await b.add_links(more, 1, None, lambda us: us[1:3]) == 2
        assert await a.add_links(more, 1, None) == 2  # the two keep refused were not seen
        await c.close()

    arun(go)


def test_an_expired_lease_goes_to_the_other_worker_and_the_late_ack_is_refused(
        redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url, seeds=("http://a.test/", "http://a.test/b"))
        a = c.frontier("a", lease_ttl=1.0)
        b = c.frontier("b", lease_ttl=5)
        mine = await a.lease(1)
        [r] = mine
        assert r.lease > 0 and r.lease_deadline > 0
        [other] = await b.lease(5)
        assert other.url != r.url
        assert await b.lease(5) == []
        assert not await a.is_finished()
        await asyncio.sleep(1.1)
        [again] = await b.lease(5)  # the sweep returned it to the queue
        assert again.url == r.url and again.lease != r.lease
        assert not await a.ack(r, rec(r))  # lost: changes nothing
        await a.release(r)  # ignored too
        assert await a.extend([r]) == [r]
        st = await b.statistics()
        assert (st.leased, st.done, st.expired, st.queued) == (2, 0, 1, 0)
        assert await b.ack(again, rec(again)) and await b.ack(other, rec(other))
        assert await b.is_finished()
        await c.close()

    arun(go)


def test_extend_keeps_a_lease_alive(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url, seeds=("http://a.test/",))
        a, b = c.frontier("a", lease_ttl=1.0), c.frontier("b", lease_ttl=1.0)
        [r] = await a.lease(1)
        first = r.lease_deadline
        for _ in range(5):  # 1.5 s in all: half as long again as the ttl
            await asyncio.sleep(0.3)
            assert await a.extend([r]) == []
        assert r.lease_deadline > first + 1.2
        assert await b.lease(1) == []
        assert not await b.is_finished()
        assert await a.ack(r, rec(r))
        assert await b.is_finished()
        await c.close()

    arun(go)


@pytest.mark.parametrize("budget", [3, 4])
def test_max_pages_is_exact_for_the_whole_crawl(redis_url: str, budget: int) -> None:
    async def go() -> None:
        seeds = tuple(f"http://a.test/{i}" for i in range(10))
        c = await _crawl(redis_url, seeds=seeds, max_pages=budget)
        a, b = c.frontier("a", lease_ttl=1.0), c.frontier("b")
        held = await a.lease(2)
        held += await b.lease(100)
        assert len(held) == budget  # a lease takes a place in the budget
        assert await b.lease(100) == []
        # A release gives its place back; so does a lease that expires.
        await b.release(held[-1])
        [back] = await b.lease(100)
        assert back.url == held[-1].url
        await asyncio.sleep(1.1)  # a's two leases expire
        again = await b.lease(100)
        assert sorted(r.url for r in again) == sorted(r.url for r in held[:2])
        assert not await a.ack(held[0], rec(held[0]))
        # Not fetched because of robots.txt or a trap: not a page, the place comes back.
        for r in [*again, *held[2:-1], back]:
            error = "robots_denied" if r is back else None
            assert await b.ack(r, rec(r, error))
        [extra] = await b.lease(100)
        assert await b.ack(extra, rec(extra, "timeout"))  # a failure is a page
        assert await b.lease(100) == []
        st = await b.statistics()
        assert st.done == budget + 1 and st.queued == 10 - budget - 1
        assert await b.is_finished()  # work is left, but the budget is spent
        await c.close()

    arun(go)


def test_is_finished_only_when_nothing_queued_or_leased(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url)
        a, b = c.frontier("a"), c.frontier("b")
        assert await a.is_finished()
        await a.add([Request("http://a.test/")])
        assert not await b.is_finished()
        [r] = await b.lease(3)
        assert not await a.is_finished()  # leased by b
        await b.add_links(["http://a.test/x"], 1, r.url)
        assert await b.ack(r, rec(r))
        assert not await a.is_finished()  # queued
        [x] = await a.lease(3)
        await a.release(x)
        assert not await b.is_finished()
        [x] = await a.lease(3)
        assert await a.ack(x, rec(x))
        assert await a.is_finished() and await b.is_finished()
        await c.close()

    arun(go)


def test_requests_keep_what_the_engine_needs(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url)
        f = c.frontier("a")
        post = Request("http://a.test/form", 2, "http://a.test/", "POST", retries=1,
                       meta={"k": [1, "x\ny\tz"]}, callback="parse_item", errback="on_error",
                       cb_kwargs={"n": 3}, headers={"X": "y"}, body=b"a=1&b=\xff\n\t\r\x00",
                       cookies={"c": "d"}, auth=("u", "p"))
        again = Request("http://a.test/", dont_filter=True)
        plain = Request("http://a.test/", 1, "http://a.test/r")
        assert await f.add([plain, post, again]) == 3
        got = await f.lease(10)
        assert [r.url for r in got] == ["http://a.test/", "http://a.test/form", "http://a.test/"]
        p = got[1]
        for name in ("url", "depth", "referrer", "method", "retries", "meta", "callback",
                     "errback", "cb_kwargs", "headers", "body", "cookies", "auth", "fp"):
            assert getattr(p, name) == getattr(post, name), name
        assert got[2].dont_filter and got[0].fp == plain.fp and got[0].depth == 1
        # A release keeps what changed (a retry counted) and goes to the front.
        p.retries = 2
        await f.release(p)
        await f.add([Request("http://a.test/z")])
        [p2] = await f.lease(1)
        assert p2.url == post.url and p2.retries == 2 and p2.lease != p.lease
        await c.close()

    arun(go)


def test_priorities_first_then_fifo_then_negative(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url)
        f = c.frontier("a", lease_ttl=1.0)
        reqs = [Request("http://a.test/0"), Request("http://a.test/low", priority=-1),
                Request("http://a.test/hi1", priority=5), Request("http://a.test/1"),
                Request("http://a.test/hi2", priority=5), Request("http://a.test/top", priority=9)]
        await f.add(reqs)
        order = ["top", "hi1", "hi2", "0", "1", "low"]
        got = await f.lease(3) + await f.lease(10)
        assert [r.url.rsplit("/", 1)[1] for r in got] == order
        await asyncio.sleep(1.1)  # every lease expires: each returns to its place
        got = await f.lease(10)
        assert [r.url.rsplit("/", 1)[1] for r in got] == order
        assert got[1].priority == 5
        await c.close()

    arun(go)


def test_mark_seen_claims_a_redirect_target_for_its_request(redis_url: str) -> None:
    async def go() -> None:
        c = await _crawl(redis_url, seeds=("http://a.test/",))
        a, b = c.frontier("a", lease_ttl=0.5), c.frontier("b")
        [r] = await a.lease(1)
        target = Request("http://a.test/moved").fp
        assert await a.mark_seen(target, r)
        assert not await b.mark_seen(target)  # seen: nobody else fetches it
        assert await a.mark_seen(target, r)  # r's retry follows the same redirect
        await asyncio.sleep(0.6)
        [r2] = await b.lease(1)  # whoever leases r next follows it too
        assert await b.mark_seen(target, r2)
        assert await b.ack(r2, rec(r2))
        assert not await b.mark_seen(target, r2)  # done: the claim is gone
        assert await b.add_links(["http://a.test/moved"], 1, None) == 0
        assert await b.mark_seen(Request("http://a.test/new").fp)
        await c.close()

    arun(go)


@pytest.mark.parametrize("max_pages", [None, 40])
def test_two_engines_crawl_one_site_through_redis(redis_url: str, pages: PageServer,
                                                  max_pages: int | None) -> None:
    """The ordinary engine on the Redis frontier, twice, as two workers: each
    page fetched once in all, and --max-pages held by both together."""
    links = [f"/p{i}" for i in range(300)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=0.01, links=["/", links[0]])
    recs: list[FetchRecord] = []

    async def both() -> list[int]:
        settings = Settings(seeds=(pages.url + "/",), per_host=4, obey_robots=False,
                            max_pages=max_pages)
        c = await RedisCrawl.connect(redis_url, "site")
        await c.create_or_add(settings)
        stored = await c.settings()
        gate = LocalHostGate(per_host=4, delay=0.0)
        crawlers = [Crawler(stored, frontier=c.frontier(f"w{i}", lease_ttl=2.0), gate=gate,
                            on_record=recs.append) for i in range(2)]
        done = await asyncio.gather(*(x.run() for x in crawlers))
        assert await c.frontier("x").is_finished()
        await c.close()
        return [s.records for s in done]

    counts = asyncio.run(asyncio.wait_for(both(), 50))
    fetched = pages.paths()
    assert len(fetched) == len(set(fetched))  # once each, in all
    if max_pages is None:
        assert sorted(fetched) == sorted(["/", *links])
        assert min(counts) > 0  # both took part
    assert len(by_url(recs)) == sum(counts) == len(fetched) == (max_pages or 301)
    assert pages.peak <= 4


def test_status_counts_rates_workers_and_hosts(redis_url: str) -> None:
    async def go() -> None:
        c = await RedisCrawl.connect(redis_url, "st")
        with pytest.raises(ConfigError, match="no crawl named 'st'"):
            await c.status()
        seeds = [f"http://a.test/{i}" for i in range(6)] + ["http://b.test/", "http://c.test/x"]
        await c.create_or_add(Settings(max_pages=50), seeds)
        a, b = c.frontier("host-a:1"), c.frontier("host-b:2")
        got = await a.lease(5)
        [gb] = await b.lease(1)
        for r in got[:4]:
            assert await a.ack(r, rec(r))
        assert await a.ack(got[4], rec(got[4], "timeout"))
        await b.release(gb)
        await a.add_links(["http://b.test/y"], 1, None)
        await asyncio.sleep(1.1)
        [r] = await a.lease(1)  # a beats again; b stays silent
        st = await c.status(gone_after=1.0)
        assert (st.queued, st.leased, st.done, st.failed, st.seen) == (3, 1, 4, 1, 9)
        assert (st.pages, st.max_pages, st.expired, st.name) == (5, 50, 0, "st")
        assert not st.finished
        # 5 pages in the first seconds of the crawl: the rate counts since the start.
        assert 5 / 60 <= st.pages_per_s <= 5.0
        assert [(w.id, w.alive) for w in st.workers] == [("host-a:1", True), ("host-b:2", False)]
        assert st.workers[1].age >= 1.0 and st.workers[0].age < 1.0
        assert st.top_hosts == (("a.test", 5),)
        assert abs(st.now - st.created) < 5
        await a.close()  # a worker that leaves cleanly is no longer listed
        assert [w.id for w in (await c.status()).workers] == ["host-b:2"]
        await c.close()

    arun(go)


def test_a_turns_acks_and_links_go_as_one_script(redis_url: str) -> None:
    """Round trips: a lease batch is one script; the new links and the acks
    of the pages that end in the same turn of the loop are one script, and
    what comes while it is on its way goes in the next one."""
    server = redis.Redis.from_url(redis_url)

    def scripts() -> int:
        return int(server.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

    async def go() -> None:
        c = await _crawl(redis_url, seeds=tuple(f"http://a.test/{i}" for i in range(50)))
        f = c.frontier("a")
        await f.lease(1)  # the scripts are loaded once
        await f.add_links(["http://a.test/x"], 1, None)
        before = scripts()
        got = await f.lease(100)
        assert len(got) == 50 and scripts() == before + 1
        res = await asyncio.gather(*(f.add_links([r.url, f"{r.url}/new"], 1, r.url)
                                     for r in got))
        assert res == [1] * 50 and scripts() == before + 2
        oks = await asyncio.gather(*(f.ack(r, rec(r)) for r in got))
        assert oks == [True] * 50 and scripts() == before + 3
        # Links this worker sent already cost no round trip at all.
        assert await f.add_links([got[0].url, f"{got[0].url}/new"], 1, None) == 0
        assert scripts() == before + 3
        # Links and acks together; then three waves while one send is on its way.
        more = await f.lease(100)
        assert len(more) == 50 and scripts() == before + 4
        res = await asyncio.gather(*(f.add_links([f"{r.url}/2"], 1, r.url) for r in more[:25]),
                                   *(f.ack(r, rec(r)) for r in more[:25]))
        assert res == [1] * 25 + [True] * 25 and scripts() == before + 5

        async def later(r: Request, turns: int) -> bool:
            for _ in range(turns):
                await asyncio.sleep(0)
            return await f.ack(r, rec(r))

        oks = await asyncio.gather(*(later(r, i % 3) for i, r in enumerate(more[25:])))
        assert oks == [True] * 25 and scripts() <= before + 7
        await f.close()
        await c.close()

    arun(go)


def test_the_seen_set_costs_under_16_bytes_a_url(redis_url: str) -> None:
    """Exact dedup in Redis's intsets: ~8.7 bytes a URL at 1,000,000 URLs
    (crawl.py's docstring); pinned here at 100,000 (expected_urls scales the
    buckets alike), measured as the server's used memory less the queue."""
    n = 100_000
    server = redis.Redis.from_url(redis_url)

    async def go() -> None:
        c = await RedisCrawl.connect(redis_url, "mem")
        await c.create_or_add(Settings(), expected_urls=n)
        f = c.frontier("a")
        before = server.info("memory")["used_memory"]
        for i in range(0, n, 2000):
            await f.add_links([f"http://h{j % 13}.test/p/{j}" for j in range(i, i + 2000)], 1, None)
        server.delete(c.keys.q)
        per_url = (server.info("memory")["used_memory"] - before) / n
        assert (await f.statistics()).seen == n
        assert per_url <= 16, per_url
        buckets = list(server.scan_iter(match=c.keys.seen_prefix.replace("{", "\\{")
                                        .replace("}", "\\}") + "*", count=1000))
        assert len(buckets) == 512
        assert {server.object("encoding", b) for b in buckets} == {b"intset"}
        await c.close()

    arun(go)


def test_the_frontier_waits_out_a_restarted_server() -> None:
    """Redis killed and started again (append-only file on): the calls made
    while it is down wait, then go through (the scripts loaded again), and
    the crawl's record is whole: nothing lost, nothing doubled."""
    with RedisServer(persist=True) as server:
        async def go() -> None:
            c = await _crawl(server.url, seeds=tuple(f"http://a.test/{i}" for i in range(10)))
            f = c.frontier("a")
            got = await f.lease(6)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: server.stop(kill=True))
            acks = asyncio.gather(*(f.ack(r, rec(r)) for r in got[:3]),
                                  f.add_links(["http://a.test/new"], 1, None))
            await asyncio.sleep(0.5)
            assert not acks.done()  # waiting for Redis
            await loop.run_in_executor(None, server.start)
            *oks, added = await acks
            assert oks == [True] * 3 and added == 1
            more = await f.lease(10)
            assert sorted(r.url for r in more) == sorted(
                [*(f"http://a.test/{i}" for i in range(6, 10)), "http://a.test/new"])
            st = await f.statistics()
            assert (st.queued, st.leased, st.done, st.seen) == (0, 8, 3, 11)
            assert [await f.ack(r, rec(r)) for r in [*got[3:], *more]] == [True] * 8
            assert await f.is_finished()
            await c.close()

        arun(go)


def test_many_seeds_in_order_and_an_existing_crawls_own_buckets(redis_url: str) -> None:
    seeds = [f"http://s{i % 50}.test/{i}" for i in range(25_000)]

    async def go() -> None:
        c = await RedisCrawl.connect(redis_url, "big")
        assert await c.create_or_add(Settings(), seeds[:20_000], expected_urls=10**8) == 20_000
        # Seeded again with another expected size: the crawl keeps its own buckets.
        c2 = await RedisCrawl.connect(redis_url, "big")
        assert await c2.create_or_add(Settings(), seeds[10_000:], expected_urls=10) == 5_000
        assert (await c2.settings()).seeds == tuple(seeds)
        f = c2.frontier("a")
        assert (await f.statistics()).seen == 25_000
        assert await f.add_links(seeds[::1000], 1, None) == 0
        assert (await f.statistics()).queued == 25_000
        await c.close()
        await c2.close()

    arun(go)
    server = redis.Redis.from_url(redis_url)
    assert server.hget("lc:{big}:meta", "seen_bits") == str(seen_bits(10**8)).encode()


def test_delete_removes_every_key_of_the_crawl_and_no_other(redis_url: str) -> None:
    async def go() -> None:
        a = await _crawl(redis_url, "a", seeds=("http://a.test/",))
        b = await _crawl(redis_url, "b", seeds=("http://b.test/",))
        [r] = await a.frontier("w").lease(1)
        await a.frontier("w").add_links(["http://a.test/x"], 1, r.url)
        assert await a.delete() > 5
        assert not await a.exists() and await b.exists()
        assert redis.Redis.from_url(redis_url).keys("lc:{a}:*") == []
        assert (await b.frontier("w").statistics()).queued == 1
        await a.close()
        await b.close()

    arun(go)


def test_a_release_while_the_ack_is_on_its_way_does_not_undo_it(redis_url: str) -> None:
    """A worker cancelled while it acks (SIGTERM) releases the request: the
    ack, already in a batch, wins; the page is not queued again."""
    async def go() -> None:
        c = await _crawl(redis_url, seeds=("http://a.test/", "http://a.test/b"))
        f = c.frontier("a")
        r, other = await f.lease(2)
        acking = asyncio.create_task(f.ack(r, rec(r)))
        await asyncio.sleep(0)  # the ack waits for its batch
        acking.cancel()
        await f.release(r)
        await f.release(other)  # no ack under way: given back
        await f.close()  # the batch goes out
        st = await f.statistics()
        assert (st.done, st.leased, st.queued) == (1, 0, 1)
        [again] = await f.lease(5)
        assert again.url == other.url
        await c.close()

    arun(go)
