"""loopcrawl's keep-alive pool (wire.py) against real servers: what a GET sends,
how connections are kept and replaced, and the body framings HTTP/1.1 allows."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from loopcrawl.wire import Pool

from .conftest import PageServer
from .helpers import by_url, run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FAST = {"timeout": 3.0, "connect_timeout": 2.0, "read_timeout": 1.5, "retry_backoff": 0.05,
        "obey_robots": False}


class RawServer:
    """A TCP server on 127.0.0.1 that answers with bytes a test writes by hand."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.wait_for(self.handler(r, w), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            w.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def read_request(self, r: asyncio.StreamReader) -> bytes:
        head = await r.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head

    def __enter__(self) -> RawServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def page(path: str, links: int = 0) -> bytes:
    anchors = "".join(f'<a href="/p{i}">p{i}</a>' for i in range(links))
    return f"<html><head><title>{path}</title></head><body>{anchors}</body></html>".encode()


def answer(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def target(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode()


def test_the_pool_sends_what_the_session_sends(pages: PageServer) -> None:
    pages.add("/same")
    sent = {}
    for pool in (True, False):
        pages.log.clear()
        recs, _ = run(pages.url + "/same", **FAST, http_pool=pool,
                      headers={"X-Every": "yes"}, user_agent="probe/1")
        assert recs[0].status == 200
        sent[pool] = pages.log[0].headers
    assert sent[True] == sent[False]
    assert sent[True]["User-Agent"] == "probe/1" and sent[True]["X-Every"] == "yes"
    assert "gzip" in sent[True]["Accept-Encoding"]


def test_connections_are_kept_alive_and_reused(pages: PageServer) -> None:
    pages.add("/", links=[f"/k{i}" for i in range(40)])
    for i in range(40):
        pages.add(f"/k{i}")
    pages.log.clear()
    recs, _ = run(pages.url + "/", **FAST, per_host=4)
    assert len(recs) == 41 and all(r.status == 200 for r in recs)
    peers = {h.peer for h in pages.log}
    assert None not in peers and 1 <= len(peers) <= 4  # never more than in flight at once


def test_a_connection_the_server_dropped_is_replaced_once() -> None:
    """Each connection answers one request, then drops the next one unanswered,
    as a server does whose keep-alive time ran out just as the request came."""

    async def once(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await srv.read_request(r)
        w.write(answer(page(target(head), links=5 if target(head) == "/" else 0)))
        await w.drain()
        await srv.read_request(r)  # the second request on this connection: dropped

    with RawServer(once) as srv:
        recs, stats = run(srv.url + "/", **FAST, per_host=1, retries=0)
    assert sorted(r.url.removeprefix(srv.url) for r in recs) == ["/", *(f"/p{i}" for i in range(5))]
    assert all(r.status == 200 for r in recs), [r for r in recs if r.error]
    assert stats.retries == 0  # replaced inside the fetch, not retried as a failure
    assert srv.connections == 6


def test_close_delimited_and_chunked_bodies_are_read_whole() -> None:
    async def framings(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            body = page(path, links=2 if path == "/" else 0)
            if path == "/p0":  # HTTP/1.0 style: no length, the end is the close
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        b"Connection: close\r\n\r\n" + body)
                await w.drain()
                return
            if path == "/p1":  # chunked, in three chunks
                parts = [body[:10], body[10:20], body[20:]]
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                        + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n")
            else:  # 103 Early Hints first: an interim answer to skip
                w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                        + answer(body))
            await w.drain()

    with RawServer(framings) as srv:
        recs, _ = run(srv.url + "/", **FAST, retries=0)
    got = by_url(recs)
    for path in ("/", "/p0", "/p1"):
        rec = got[srv.url + path]
        assert rec.status == 200 and rec.title == path, rec
    assert got[srv.url + "/p0"].bytes == len(page("/p0"))
    assert got[srv.url + "/"].links == 2


def test_cookies_a_site_sets_on_a_get_go_back_on_the_next() -> None:
    seen: list[str | None] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append(request.headers.get("Cookie"))
        if request.path == "/":
            resp = web.Response(body=page("/", links=1), content_type="text/html")
            resp.set_cookie("sid", "abc123")
            return resp
        return web.Response(body=page(request.path), content_type="text/html")

    with PageServer(handler=handle) as srv:
        recs, _ = run(srv.url + "/", **FAST)
    assert len(recs) == 2 and seen == [None, "sid=abc123"]


def test_a_header_with_a_line_break_is_refused_not_sent() -> None:
    async def go() -> None:
        pool = Pool({"User-Agent": "x"}, connect_timeout=1.0,
                    cookie_jar=aiohttp.DummyCookieJar())
        with pytest.raises(ValueError, match="line break"):
            await pool.request("http://127.0.0.1:9/", {"X-Evil": "a\r\nHost: other"})
        with pytest.raises(ValueError, match="line break"):
            Pool({"X-Evil": "a\nb"}, connect_timeout=1.0, cookie_jar=aiohttp.DummyCookieJar())

    asyncio.run(go())


@pytest.fixture
def keepalive_server() -> Iterator[RawServer]:
    async def keep(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            w.write(answer(page(path)))
            await w.drain()

    with RawServer(keep) as srv:
        yield srv


def test_idle_connections_are_closed_after_the_keepalive_time(
    keepalive_server: RawServer,
) -> None:
    async def go() -> tuple[int, int, int]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=1.0, keepalive=0.2,
                    cookie_jar=aiohttp.DummyCookieJar())
        async with await pool.request(keepalive_server.url + "/a") as resp:
            assert await resp.read() == page("/a")
        async with await pool.request(keepalive_server.url + "/b") as resp:
            await resp.read()
        kept = pool.idle()
        pool.sweep(time.monotonic() + 0.1)  # not yet past the keep-alive time
        still = pool.idle()
        pool.sweep(time.monotonic() + 1.0)
        return kept, still, pool.idle()

    assert asyncio.run(go()) == (1, 1, 0)
    assert keepalive_server.connections == 1  # /b went over /a's connection


@pytest.mark.parametrize("session", [False, True], ids=["pool", "session"])
def test_https_against_a_certificate_the_system_trusts(tmp_path: Path, session: bool) -> None:
    """A test CA handed over as the system's (SSL_CERT_FILE): verified, not skipped."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with PageServer(ssl_context=server_ctx) as srv:
        srv.add("/", links=["/a", "http://127.0.0.1:1/plain"])
        srv.add("/a", title="over TLS")
        args = ["crawl", srv.url + "/", "-o", "-", "--quiet", "--retries", "0"]
        env = {**os.environ, "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
        r = subprocess.run([sys.executable, "-m", "loopcrawl", *args,
                            *(["--http-session"] if session else [])],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        recs = {d["url"]: d for d in map(json.loads, r.stdout.splitlines())}
        assert recs[srv.url + "/a"]["status"] == 200 and recs[srv.url + "/a"]["title"] == "over TLS"
        # Without the CA the certificate is refused, as it must be.
        env.pop("SSL_CERT_FILE")
        r = subprocess.run([sys.executable, "-m", "loopcrawl", *args, "--ignore-robots",
                            *(["--http-session"] if session else [])],
                           capture_output=True, text=True, timeout=60, env=env)
        rec = json.loads(r.stdout.splitlines()[0])
        assert rec["error"] == "connection_error" and "CERTIFICATE_VERIFY_FAILED" in rec["message"]
