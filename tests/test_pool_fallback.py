"""The keep-alive pool runs on aiohttp's private protocol (``net/_aiohttp.py``):
whether it may is decided by a self-test at start-up, and whatever it raises
that no failure mapping foresaw hands the crawl to aiohttp's session. These
tests break the private API on purpose; the crawl must still be complete."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.client_proto import ResponseHandler

from loopcrawl.net import _aiohttp, wire
from loopcrawl.net.fetcher import Fetcher
from loopcrawl.settings import Settings

from .conftest import PageServer
from .helpers import run


def site(pages: PageServer, n: int) -> None:
    pages.add("/", links=[f"/p{i}" for i in range(n)])
    for i in range(n):
        pages.add(f"/p{i}", title=f"page {i}")


def complete(records: list[Any], n: int) -> None:
    assert sorted((r.url.rsplit("/", 1)[1], r.status, r.error) for r in records) == sorted(
        [("", 200, None)] + [(f"p{i}", 200, None) for i in range(n)])


def test_the_self_test_passes_on_the_installed_aiohttp() -> None:
    """The version pin in pyproject.toml is the range this passed on."""
    wire._verdict = None
    assert asyncio.run(wire.self_test()) is True


class _Renamed(ResponseHandler):
    """An aiohttp whose protocol renamed a keyword the pool passes."""

    def set_response_params(self, *, timer: object = None,  # type: ignore[override]
                            max_line: int = 8190) -> None:
        super().set_response_params(timer=timer)  # type: ignore[arg-type]


class _Misparses(ResponseHandler):
    """An aiohttp whose parser reads the body differently (no inflation)."""

    def set_response_params(self, **kw: Any) -> None:
        super().set_response_params(**{**kw, "auto_decompress": False})


@pytest.mark.parametrize("broken", [_Renamed, _Misparses], ids=["signature", "behaviour"])
def test_a_failed_self_test_sends_every_request_through_the_session(
    pages: PageServer, pool_calls: list[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, broken: type,
) -> None:
    monkeypatch.setattr(_aiohttp, "ResponseHandler", broken)
    monkeypatch.setattr(wire, "_verdict", None)
    site(pages, 5)
    with caplog.at_level(logging.WARNING, "loopcrawl.net"):
        records, _ = run(pages.url + "/", obey_robots=False)
        records2, _ = run(pages.url + "/", obey_robots=False)  # decided once per process
    complete(records, 5)
    complete(records2, 5)
    assert [u for u in pool_calls if u.startswith(pages.url)] == []
    warned = [r.getMessage() for r in caplog.records if "self-test" in r.getMessage()]
    assert len(warned) == 1 and "every request takes aiohttp's session" in warned[0]


def breaks_at_the_third(monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> list[int]:
    """The pool's third exchange raises ``error`` (an aiohttp that changed
    under it); the list holds how many exchanges were tried."""
    real = wire.Pool._exchange
    exchanges = [0]

    async def exchange(self: wire.Pool, proto: Any, data: bytes) -> Any:
        exchanges[0] += 1
        if exchanges[0] == 3:
            raise error("an aiohttp that changed")
        return await real(self, proto, data)

    monkeypatch.setattr(wire.Pool, "_exchange", exchange)
    return exchanges


@pytest.mark.parametrize("error", [TypeError, AttributeError, KeyError])
def test_the_pool_failing_mid_crawl_hands_the_rest_to_the_session(
    pages: PageServer, pool_calls: list[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, error: type[Exception],
) -> None:
    """The request that hit it is fetched again on the session; no record says
    ``internal_error``, and the pool is not asked again."""
    exchanges = breaks_at_the_third(monkeypatch, error)
    site(pages, 8)
    with caplog.at_level(logging.WARNING, "loopcrawl.net"):
        records, stats = run(pages.url + "/", obey_robots=False, concurrency=1)
    complete(records, 8)
    assert stats.errors == {}
    assert len(pool_calls) == 3 and exchanges == [3]  # then the session, for every page
    assert sorted(pages.paths()) == sorted(["/"] + [f"/p{i}" for i in range(8)])
    warned = [r.getMessage() for r in caplog.records if "keep-alive pool failed" in r.getMessage()]
    assert warned == [f"the keep-alive pool failed ({error.__name__}: "
                      f"{error('an aiohttp that changed')}); the rest of the crawl "
                      "takes aiohttp's session"]


def test_an_unexpected_error_outside_the_pool_is_not_blamed_on_it(pages: PageServer) -> None:
    """A redirect check that raises (a bug of the caller's) is not the pool's:
    it keeps serving."""
    pages.add("/r", status=302, headers={"Location": "/t"})
    pages.add("/t")

    async def go() -> tuple[str, bool]:
        async def check(target: str) -> None:
            raise ZeroDivisionError(target)

        async with Fetcher(Settings()) as f:
            with pytest.raises(ZeroDivisionError) as got:
                await f.fetch(pages.url + "/r", check_redirect=check)  # type: ignore[arg-type]
            return str(got.value), f._pool is not None

    assert asyncio.run(go()) == (pages.url + "/t", True)


def test_a_failed_pool_is_closed_with_the_fetcher(
    pages: PageServer, pool_calls: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool that failed mid-crawl still holds idle keep-alive connections:
    they are closed when the fetcher closes, not left to the garbage collector."""
    import psutil

    breaks_at_the_third(monkeypatch, TypeError)
    for p in ("/a", "/b", "/c"):
        pages.add(p)

    def ours() -> int:
        """This process's open connections to the server (the client's ends)."""
        return sum(1 for c in psutil.Process().net_connections("tcp")
                   if c.raddr and c.raddr.port == pages.port and c.status == "ESTABLISHED")

    async def go() -> tuple[int, int]:
        async with Fetcher(Settings(timeout=10)) as f:
            await asyncio.gather(f.fetch(pages.url + "/a"), f.fetch(pages.url + "/b"))
            idle = ours()  # two connections, both idle in the pool now
            await f.fetch(pages.url + "/c")  # the pool fails; the session takes it
            assert f._pool is None
        for _ in range(50):  # closed transports let go of their sockets on the next turns
            if not ours():
                break
            await asyncio.sleep(0.01)
        return idle, ours()

    assert asyncio.run(go()) == (2, 0)
    assert pool_calls == [pages.url + "/a", pages.url + "/b", pages.url + "/c"]


def test_the_request_the_pool_failed_on_is_sent_again_as_it_was(
    pages: PageServer, pool_calls: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session's second try is the same request: its headers, its
    redirect check and turns for each hop, its size cap, cut or refused."""
    from loopcrawl.errors import TooLarge
    from loopcrawl.net.fetched import Hop

    real = wire.Pool._exchange

    async def exchange(self: wire.Pool, proto: Any, data: bytes) -> Any:
        if len(pool_calls) == 1:  # each fetcher's pool fails at its first exchange
            raise TypeError("an aiohttp that changed")
        return await real(self, proto, data)

    monkeypatch.setattr(wire.Pool, "_exchange", exchange)
    pages.add("/r", status=302, headers={"Location": "/t"})
    pages.add("/t", body=b"t")
    pages.add("/big", body=b"x" * 100)
    asked: list[str] = []

    async def turn(url: str) -> None:
        asked.append("turn " + url)

    async def check(url: str) -> Hop:
        asked.append("check " + url)
        return Hop.FOLLOW

    async def go() -> list[object]:
        out: list[object] = []
        for kw in ({"headers": {"X-Mine": "m"}, "check_redirect": check, "wait_turn": turn},
                   {"max_size": 50, "truncate": True}, {"max_size": 50}):
            pool_calls.clear()
            async with Fetcher(Settings()) as f:
                url = pages.url + ("/r" if "headers" in kw else "/big")
                try:
                    r = await f.fetch(url, **kw)  # type: ignore[arg-type]
                    out.append((r.url, r.redirects, r.body))
                except TooLarge as e:
                    out.append(str(e))
                assert f._pool is None and len(pool_calls) == 1
        return out

    u = pages.url
    assert asyncio.run(go()) == [(u + "/t", 1, b"t"), (u + "/big", 0, b"x" * 50),
                                 "Content-Length 100 is above the 50-byte cap"]
    assert asked == ["check " + u + "/t", "turn " + u + "/t"]
    assert [(h.path, h.headers.get("X-Mine")) for h in pages.log] == [
        ("/r", "m"), ("/t", "m"), ("/big", None), ("/big", None)]


def test_the_request_sent_again_has_its_whole_timeout(
    pages: PageServer, pool_calls: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool fails 0.7 s into a request whose timeout is 1 s: the
    session's try, 0.6 s long, has a whole second of its own (the first
    try's clock is stopped, not left to cut it at 1 s)."""
    async def exchange(self: wire.Pool, proto: Any, data: bytes) -> Any:
        await asyncio.sleep(0.7)
        raise TypeError("an aiohttp that changed")

    monkeypatch.setattr(wire.Pool, "_exchange", exchange)
    pages.add("/slow", body=b"late", delay=0.6)

    async def go() -> bytes:
        async with Fetcher(Settings(timeout=1.0, read_timeout=1.0)) as f:
            return (await f.fetch(pages.url + "/slow")).body

    assert asyncio.run(go()) == b"late"
    assert pool_calls == [pages.url + "/slow"] and pages.paths() == ["/slow"]
