"""The Redis tests' server is a real one, and the fixture isolates tests."""

from __future__ import annotations

import redis

from .redis_server import RedisServer


def test_the_fixture_serves_a_real_redis_emptied_per_test(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    assert r.dbsize() == 0
    r.set("k", "v")
    assert r.get("k") == b"v"
    assert int(r.info("server")["redis_version"].split(".")[0]) >= 6


def test_a_persistent_server_keeps_its_data_across_a_restart() -> None:
    with RedisServer(persist=True) as server:
        r = redis.Redis.from_url(server.url)
        r.sadd("s", 1, 2, 3)
        server.restart()
        assert redis.Redis.from_url(server.url).scard("s") == 3
