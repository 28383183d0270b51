"""Serving a :class:`~loopcrawl.testsite.site.Site` over real HTTP on loopback.

A low-level ``aiohttp.web.Server`` (no router, no access log) keeps the server cheap
enough that a benchmark measures the crawler, not the site. Three ways to run it:

* :class:`TestSiteServer` - inside a running event loop (``async with``);
* :class:`ServerThread` - on its own loop in a background thread, for tests that
  need to read the request log;
* :class:`ServerProcess` - in a child process (``python -m loopcrawl.testsite``), so
  the server never competes with the crawler for the same interpreter and core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiohttp import web

from . import hostile, traps
from .shop import Shop, default_shop
from .site import Site

__all__ = ["LogEntry", "ServerProcess", "ServerThread", "TestSiteServer", "run"]

_NOT_ALLOWED = (405, {"Allow": "GET, HEAD", "Content-Type": "text/plain; charset=utf-8"},
                b"method not allowed\n")


@dataclass(slots=True)
class LogEntry:
    """One request as the server saw it (``host`` is the Host header, ``raw_path``
    the request target as sent); ``start``/``end`` are ``time.monotonic()``."""

    host: str
    method: str
    raw_path: str
    status: int
    start: float
    end: float
    headers: dict[str, str] = field(default_factory=dict)


class TestSiteServer:
    """The test site on ``host:port`` and, on the same port, ``other_host``.

    The second address gives crawlers a real second host (for scope and per-host
    politeness) without DNS. Counters let tests check politeness from the outside:
    ``peak_concurrency`` is the most requests in flight at once, overall and per
    Host header.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, site: Site, *, host: str = "127.0.0.1", port: int = 0,
                 other_host: str | None = "127.0.0.2", latency_ms: float = 0.0,
                 log: bool = True, hostile: bool = False, shop: Shop | None = None) -> None:
        self.site = site
        self._shop = shop  # the book shop under /shop/ (built on first use)
        self.hostile = hostile  # also serve the hostile corner (/hostile/, /traps/)
        self.host = host
        self.port = port
        self.other_host = other_host
        self.other_bound = False
        self.latency = max(0.0, latency_ms) / 1000.0
        self.log: list[LogEntry] = []
        self._logging = log
        self.requests = 0
        self.peak_concurrency = 0
        self.peak_concurrency_by_host: dict[str, int] = {}
        self._inflight = 0
        self._inflight_by_host: dict[str, int] = {}
        self._runner: web.ServerRunner | None = None

    @property
    def shop(self) -> Shop:
        if self._shop is None:
            self._shop = default_shop()
        return self._shop

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash), once started."""
        return f"http://{self.host}:{self.port}"

    @property
    def other_base_url(self) -> str | None:
        """``http://127.0.0.2:port`` if that address could be bound, else None."""
        return f"http://{self.other_host}:{self.port}" if self.other_bound else None

    def reset(self) -> None:
        """Clear the log and the counters (between phases of one test)."""
        self.log.clear()
        self.requests = 0
        self.peak_concurrency = 0
        self.peak_concurrency_by_host.clear()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        start = time.monotonic()
        host = request.headers.get("Host") or f"{self.host}:{self.port}"
        self.requests += 1
        self._inflight += 1
        self.peak_concurrency = max(self.peak_concurrency, self._inflight)
        by_host = self._inflight_by_host
        n = by_host.get(host, 0) + 1
        by_host[host] = n
        if n > self.peak_concurrency_by_host.get(host, 0):
            self.peak_concurrency_by_host[host] = n
        status = 499  # stays so if the client goes away during the latency sleep
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.hostile and request.path.startswith("/hostile"):
                resp = await hostile.handle(request)
                status = resp.status
                return resp
            if self.hostile and request.path.startswith(traps.ROOT):
                status, headers, body = traps.response(request.path, request.query_string)
            elif request.path.startswith("/shop"):
                status, headers, body = self.shop.response(
                    request.method, request.raw_path, request.headers, await request.read())
            elif request.method in ("GET", "HEAD"):
                status, headers, body = self.site.response(request.raw_path, host)
            else:
                status, headers, body = _NOT_ALLOWED
            return web.Response(status=status, headers=headers, body=body)
        finally:
            self._inflight -= 1
            by_host[host] -= 1
            if self._logging:
                self.log.append(LogEntry(host, request.method, request.raw_path, status,
                                         start, time.monotonic(), dict(request.headers)))

    async def start(self) -> None:
        """Bind and serve. Raises ``OSError`` (strerror + the address) if the port
        is taken; a second host that cannot be bound is skipped silently."""
        runner = web.ServerRunner(web.Server(self._handle, access_log=None),
                                  handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, backlog=4096).start()
        except OSError as e:
            await runner.cleanup()
            errno = e.errno or 0
            raise OSError(errno, os.strerror(errno) if errno else str(e),
                          f"{self.host}:{self.port}") from None
        self._runner = runner
        self.port = runner.addresses[0][1]
        if self.other_host and self.other_host != self.host:
            try:
                await web.TCPSite(runner, self.other_host, self.port, backlog=4096).start()
                self.other_bound = True
            except OSError:
                self.other_bound = False

    async def stop(self) -> None:
        """Close the listeners and connections (in-flight requests get 2 s)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> TestSiteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _serve_until_signal(server: TestSiteServer, banner: str | None,
                              print_port: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        if print_port:
            print(server.port, flush=True)
        elif banner is not None:
            print(banner.format(port=server.port), flush=True)
        await stop.wait()
    finally:
        await server.stop()


def run(pages: int = 1000, port: int = 8000, latency_ms: float = 0.0, seed: int = 0,
        host: str = "127.0.0.1", quiet: bool = False, *, print_port: bool = False,
        other_host: str | None = "127.0.0.2", hostile: bool = False) -> None:
    """Serve the site until SIGINT or SIGTERM, then return (no traceback).

    Prints ``test site: http://HOST:PORT/ (N pages, seed S)`` once listening, or
    just the port number with ``print_port`` (what :class:`ServerProcess` reads).
    A taken port raises ``OSError`` before anything is printed.
    """
    server = TestSiteServer(Site(pages, seed), host=host, port=port, other_host=other_host,
                            latency_ms=latency_ms, log=False, hostile=hostile)
    banner = None if quiet else f"test site: http://{host}:{{port}}/ ({pages} pages, seed {seed})"
    if banner and hostile:
        banner += (f"\nhostile corner: http://{host}:{{port}}/hostile/"
                   f"\ntrap section:   http://{host}:{{port}}/traps/")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signal(server, banner, print_port))


class ServerThread:
    """A :class:`TestSiteServer` on its own event loop in a daemon thread.

    For tests: the crawler's loop stays free, and ``.server`` (log, counters) can be
    read from the test's thread. Keyword arguments go to :class:`TestSiteServer`.
    """

    def __init__(self, site: Site, **kwargs: Any) -> None:
        self.server = TestSiteServer(site, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="testsite-server", daemon=True)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def site(self) -> Site:
        return self.server.site

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to the starting thread, never lost
            self._error = self._error or e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def start(self) -> ServerThread:
        """Start and wait until listening; re-raises a bind error here."""
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test site server did not start within 10 s")
        if self._error is not None:
            self._thread.join(5)
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (bounded: a few seconds at most)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ServerProcess:
    """The test site in a child process: ``python -m loopcrawl.testsite --print-port``.

    Used by the demo and benchmarks so that serving pages costs the crawler's
    process nothing. ``port=0`` lets the child pick a free port; it is read back
    from the child's first line of output.
    """

    def __init__(self, pages: int = 1000, *, seed: int = 0, latency_ms: float = 0.0,
                 host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0) -> None:
        self.pages = pages
        self.seed = seed
        self.latency_ms = latency_ms
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerProcess:
        """Start the child and wait for its port; raises RuntimeError with the
        child's error output if it exits or stays silent."""
        cmd = [sys.executable, "-m", "loopcrawl.testsite", "--pages", str(self.pages),
               "--port", str(self.port), "--seed", str(self.seed),
               "--latency-ms", str(self.latency_ms), "--host", self.host, "--print-port"]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # so the child imports this copy
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if line.strip().isdigit():
            self.port = int(line)
            return self
        err = self._read_stderr()
        self.stop()
        raise RuntimeError("test site process did not start"
                           + (f": {err}" if err else f" within {self.startup_timeout:g} s"))

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; closes the pipes."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
