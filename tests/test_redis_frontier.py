"""The crawl's record in Redis and its frontier, in-process against a real
redis-server (the ``redis_url`` fixture): two ``RedisFrontier``s on one crawl
play two workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from loopcrawl.errors import ConfigError
from loopcrawl.frontier.redis import RedisCrawl, seen_bits
from loopcrawl.http import FetchRecord, Request
from loopcrawl.settings import Settings

from .redis_server import free_port

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
