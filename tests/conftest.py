"""Fixtures: real HTTP servers on 127.0.0.1, each on its own thread and loop.

``pages`` is a tiny site built per test (``pages.add("/a", links=["/b"])``);
the ``testsite_*`` fixtures serve the built-in synthetic site.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import pytest
from aiohttp import web

from .redis_server import RedisServer

if TYPE_CHECKING:
    from loopcrawl.testsite import ServerThread, Site


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@pytest.fixture(autouse=True)
def _charsets_looked_up_anew() -> None:
    """Each test looks charsets up itself: ``make mutate`` runs a mutant of
    ``encoding._lookup_charset`` in a fork of a process whose cache the
    unmutated run filled, so the mutant would never be called."""
    from loopcrawl.encoding import _charset

    _charset.cache_clear()


@dataclass
class Hit:
    host: str
    path: str
    start: float
    end: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    peer: tuple[str, int] | None = None  # the client's address: one per connection


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class LoopServer:
    """A server on an event loop of its own, in a thread, for a ``with`` block.

    A subclass's ``_listen`` starts serving on 127.0.0.1, sets ``port`` and
    returns what closes it."""

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _listen(self) -> Callable[[], Awaitable[object]]:
        raise NotImplementedError

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        close = await self._listen()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await close()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the test server did not stop"


class PageServer(LoopServer):
    """A small real server whose pages a test declares in a line or two."""

    def __init__(self, handler: Handler | None = None, hosts: tuple[str, ...] = ("127.0.0.1",),
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.handler = handler
        self.ssl_context = ssl_context  # serve https with it
        self.hosts = hosts
        self.routes: dict[str, Route] = {}
        self.log: list[Hit] = []
        self.active = 0
        self.peak = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def add(
        self,
        path: str,
        *,
        links: list[str] | None = None,
        title: str | None = None,
        body: bytes | str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "text/html; charset=utf-8",
        delay: float = 0.0,
    ) -> None:
        if body is None:
            anchors = "".join(f'<a href="{h}">link</a>' for h in links or [])
            body = (f"<html><head><title>{title or path}</title></head>"
                    f"<body>{anchors}</body></html>")
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": content_type, **(headers or {})}
        self.routes[path] = Route(status, body, h, delay)

    def paths(self) -> list[str]:
        return [h.path for h in self.log]

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        hit = Hit(request.host, request.raw_path, time.monotonic(), headers=dict(request.headers),
                  peer=tuple(peer[:2]) if peer else None)
        self.log.append(hit)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.handler is not None:
                return await self.handler(request)
            route = self.routes.get(request.raw_path)
            if route is None:
                return web.Response(status=404, text="not found")
            if route.delay:
                await asyncio.sleep(route.delay)
            return web.Response(status=route.status, body=route.body, headers=route.headers)
        finally:
            self.active -= 1
            hit.end = time.monotonic()

    async def _listen(self) -> Callable[[], Awaitable[object]]:
        # A handler still hanging (the hostile corner's silent answers) is
        # cancelled after a second, so the server stops when the test is done.
        runner = web.ServerRunner(web.Server(self._handle), handle_signals=False,
                                  shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.hosts[0], 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = runner.addresses[0][1]
        for host in self.hosts[1:]:  # the same port on other loopback addresses
            await web.TCPSite(runner, host, self.port).start()
        return runner.cleanup


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``make mutate`` (mutmut sets MUTANT_UNDER_TEST and runs in
    ``mutants/``, next to its record of each test's duration): the quickest
    tests first, so ``-x`` ends a killed mutant's run as early as it can, and
    a hang ends early. Normal runs keep the files' order and timeouts."""
    import json
    import os
    from pathlib import Path

    stats = Path("mutmut-stats.json")
    if not os.environ.get("MUTANT_UNDER_TEST") or not stats.is_file():
        return
    try:
        took = json.loads(stats.read_text())["duration_by_test"]
    except (ValueError, KeyError):
        return
    items.sort(key=lambda item: took.get(item.nodeid, 1.0))
    # A mutant that hangs a test is caught at ten times the test's traced
    # time (20 s at least), not at the suite's 120 s: a hang is a failure.
    # By a thread that ends the process: the signal method's exception, raised
    # inside the crawl's event loop, left asyncio.run() waiting forever on
    # the tasks it cancels (a hung scheduler), so the mutant ran until mutmut
    # gave up on it minutes later.
    for item in items:
        item.add_marker(pytest.mark.timeout(max(20.0, 10 * took.get(item.nodeid, 2.0)),
                                            method="thread"))


@pytest.fixture
def pages() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


@pytest.fixture(scope="session")
def site300() -> Site:
    from loopcrawl.testsite import Site

    return Site(pages=300, seed=7)


@pytest.fixture
def testsite(site300: Site) -> Iterator[ServerThread]:
    """The built-in site (300 pages), served fresh for each test (clean log)."""
    from loopcrawl.testsite import ServerThread

    with ServerThread(site300) as srv:
        yield srv


@pytest.fixture(scope="session")
def shop() -> Iterator[ServerThread]:
    """The test site with its book shop (``/shop/``), shared by a session's tests;
    ``shop.server.shop`` is the ground truth."""
    from loopcrawl.testsite import ServerThread, Site

    with ServerThread(Site(pages=5), log=False) as srv:
        yield srv


@pytest.fixture
def pool_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs requested over loopcrawl's pool (wire.Pool) during the test:
    which road a request took, seen from inside."""
    from loopcrawl.net.wire import Pool, self_test

    asyncio.run(self_test())  # once per process, and not counted here
    calls: list[str] = []
    real = Pool.request

    async def counted(self: Pool, url: str, headers: object = None) -> object:
        calls.append(url)
        return await real(self, url, headers)  # type: ignore[arg-type]

    monkeypatch.setattr(Pool, "request", counted)
    return calls


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (tests/redis_server.py)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    assert redis_server.command("FLUSHALL").startswith(b"+OK")
    return redis_server.url
