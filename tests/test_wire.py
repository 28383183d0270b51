"""loopcrawl's keep-alive pool (wire.py) against real servers: what a GET sends,
how connections are kept and replaced, and the body framings HTTP/1.1 allows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import struct
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

from loopcrawl.net.wire import Pool

from .conftest import LoopServer, PageServer
from .helpers import by_url, run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FAST = {"timeout": 3.0, "connect_timeout": 2.0, "read_timeout": 1.5, "retry_backoff": 0.05,
        "obey_robots": False}


class RawServer(LoopServer):
    """A TCP server on 127.0.0.1 that answers with bytes a test writes by hand."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []

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

    async def _listen(self) -> Callable[[], Awaitable[object]]:
        server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

        async def close() -> None:
            server.close()
            await server.wait_closed()

        return close

    async def read_request(self, r: asyncio.StreamReader) -> bytes:
        head = await r.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head


def page(path: str, links: int = 0) -> bytes:
    anchors = "".join(f'<a href="/p{i}">p{i}</a>' for i in range(links))
    return f"<html><head><title>{path}</title></head><body>{anchors}</body></html>".encode()


def answer(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def target(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode()


def test_the_pool_sends_what_the_session_sends(pages: PageServer, pool_calls: list[str]) -> None:
    pages.add("/same")
    sent = {}
    for pool in (True, False):
        pages.log.clear()
        pool_calls.clear()
        recs, _ = run(pages.url + "/same", **FAST, http_pool=pool,
                      headers={"X-Every": "yes", "X-Name": "Zoë"}, user_agent="probe/1 ✓")
        assert recs[0].status == 200
        assert bool(pool_calls) == pool  # the road it was meant to take
        sent[pool] = pages.log[0].headers
    assert sent[True] == sent[False]
    assert sent[True]["User-Agent"] == "probe/1 ✓" and sent[True]["X-Name"] == "Zoë"
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
        srv.add("/", links=["/a"])
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
        assert rec["error"] == "tls_error" and "CERTIFICATE_VERIFY_FAILED" in rec["message"]


def _fetch_one(url: str, body: bytes | None = None) -> int:
    """The status of one fetch by a Fetcher with the default settings."""
    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go() -> int:
        async with Fetcher(Settings(**FAST)) as f:  # type: ignore[arg-type]
            return (await f.fetch(url, body=body)).status

    return asyncio.run(go())


def test_headers_the_crawl_sets_replace_the_pools_not_double_them() -> None:
    """One Host, the crawl's; one Cookie: the request's own and the jar's."""
    got: list[tuple[list[str], list[str]]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        got.append((request.headers.getall("Host", []), request.headers.getall("Cookie", [])))
        resp = web.Response(body=page(request.path, links=1 if request.path == "/" else 0),
                            content_type="text/html")
        if request.path == "/":
            resp.set_cookie("sid", "s1")
        return resp

    with PageServer(handler=handle) as srv:
        for pool in (True, False):
            got.clear()
            recs, _ = run(srv.url + "/", **FAST, http_pool=pool,
                          headers={"Host": "vhost.example", "Cookie": "user=me"})
            assert [r.status for r in recs] == [200, 200]
            assert got == [(["vhost.example"], ["user=me"]),
                           (["vhost.example"], ["sid=s1; user=me"])], (pool, got)


def test_userinfo_and_get_bodies_take_the_session(pool_calls: list[str]) -> None:
    """What the pool does not do (basic auth from the URL, a GET with a body)
    goes to aiohttp's session, which does it."""
    seen: list[tuple[str, str | None, bytes]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append((request.host, request.headers.get("Authorization"), await request.read()))
        return web.Response(body=page(request.path), content_type="text/html")

    with PageServer(handler=handle) as srv:
        port = srv.port
        assert _fetch_one(f"http://user:secret@127.0.0.1:{port}/a") == 200
        assert _fetch_one(srv.url + "/b", body=b'{"q":1}') == 200
    assert seen[0][:2] == (f"127.0.0.1:{port}", "Basic dXNlcjpzZWNyZXQ=")
    assert seen[1][2] == b'{"q":1}'
    assert pool_calls == []


def test_a_header_with_a_control_character_is_a_config_error() -> None:
    from loopcrawl.errors import ConfigError
    from loopcrawl.settings import Settings

    for bad in ({"user_agent": "bot\x1b[31m"}, {"headers": {"X-A": "a\x7fb"}}):
        with pytest.raises(ConfigError, match="control character"):
            Settings(seeds=["http://127.0.0.1/"], **bad)  # type: ignore[arg-type]


def test_a_reset_reused_connection_is_replaced_once_not_once_per_idle_one() -> None:
    """Three idle connections, each reset by the server when reused: the GET
    tries one of them, then a new connection, and no more."""

    async def first_only(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await srv.read_request(r)
        await asyncio.sleep(0.05)  # so that the three requests overlap
        w.write(answer(page(target(head))))
        await w.drain()
        await srv.read_request(r)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # a reset, not a clean close

    async def go() -> tuple[bytes, int]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())

        async def one(path: str) -> bytes:
            async with await pool.request(srv.url + path) as resp:
                return await resp.read()

        await asyncio.gather(*(one(f"/w{i}") for i in range(3)))
        idle = pool.idle()
        body = await one("/again")
        await pool.close()
        return body, idle

    with RawServer(first_only) as srv:
        body, idle = asyncio.run(go())
    assert idle == 3 and body == page("/again")
    assert [target(h) for h in srv.requests].count("/again") == 2  # a reset one, a new one


def test_an_answer_that_came_while_idle_is_not_taken_for_the_next() -> None:
    spoiled = threading.Event()

    async def chatty(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await srv.read_request(r)
        w.write(answer(page(target(head))))
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(answer(b"UNSOLICITED"))  # nobody asked: the connection is spoiled
        await w.drain()
        spoiled.set()
        head = await srv.read_request(r)
        w.write(answer(page(target(head))))
        await w.drain()

    async def go() -> list[bytes]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        out = []
        for path in ("/a", "/b"):
            async with await pool.request(srv.url + path) as resp:
                out.append(await resp.read())
            if path == "/a":  # the unsolicited answer was sent: let it arrive
                assert await asyncio.to_thread(spoiled.wait, 10)
                await asyncio.sleep(0.1)
        await pool.close()
        return out

    with RawServer(chatty) as srv:
        assert asyncio.run(go()) == [page("/a"), page("/b")]


def test_addresses_are_tried_by_happy_eyeballs_within_the_connect_timeout() -> None:
    """The first address swallows the connection (a full listen backlog); the
    second answers. The pool moves on after 250 ms, not at the timeout."""
    dead = socket.socket()
    dead.bind(("127.0.0.2", 0))
    dead.listen(0)
    fillers = []
    for _ in range(8):  # fill the backlog: the next SYN gets no answer
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(dead.getsockname())
        fillers.append(s)

    async def go(srv: PageServer) -> tuple[int, float]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=3.0, cookie_jar=aiohttp.DummyCookieJar())
        port = dead.getsockname()[1]
        # What DNS said for example.test (the second address, on another port,
        # is the page server).
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", srv.port))]
        pool._dns[("example.test", port)] = (time.monotonic() + 60, infos)
        t0 = time.monotonic()
        async with await pool.request(f"http://example.test:{port}/") as resp:
            status = resp.status
        took = time.monotonic() - t0
        await pool.close()
        return status, took

    try:
        with PageServer() as srv:
            srv.add("/")
            status, took = asyncio.run(go(srv))
    finally:
        for s in fillers:
            s.close()
        dead.close()
    # Not at once (the first address was tried), nor at the 3 s timeout.
    assert status == 200 and 0.2 <= took < 2.0


def test_a_hosts_trailing_dot_is_dropped_for_sni_and_host() -> None:
    """``https://localhost.:port/`` names the same host as ``localhost``: the
    certificate for ``localhost`` must verify, and Host must not carry the dot."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    hosts: list[str] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        hosts.append(request.headers["Host"])
        return web.Response(body=page("/"), content_type="text/html")

    async def go(port: int) -> int:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        pool._ssl = client_ctx  # the test CA, as the system's would be
        async with await pool.request(f"https://localhost.:{port}/") as resp:
            await resp.read()
            status = resp.status
        await pool.close()
        return status

    with PageServer(handler=handle, ssl_context=server_ctx) as srv:
        assert asyncio.run(go(srv.port)) == 200
    assert hosts == [f"localhost:{srv.port}"]


@pytest.mark.parametrize(("settings", "pooled"), [
    ({}, True), ({"http_pool": False}, False), ({"proxy": "http://127.0.0.1:1"}, False)])
def test_which_fetchers_have_a_pool(settings: dict[str, object], pooled: bool) -> None:
    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go() -> bool:
        async with Fetcher(Settings(**settings)) as f:  # type: ignore[arg-type]
            return f._pool is not None

    assert asyncio.run(go()) is pooled


def test_requests_opening_a_hosts_first_connections_share_one_lookup(
    keepalive_server: RawServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []
    real = Pool._lookup

    async def counted(self: Pool, host: str, port: int) -> object:
        lookups.append(host)
        return await real(self, host, port)

    monkeypatch.setattr(Pool, "_lookup", counted)

    async def go() -> list[bytes]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())

        async def one(path: str) -> bytes:
            async with await pool.request(f"http://localhost:{keepalive_server.port}{path}") as r:
                return await r.read()

        bodies = await asyncio.gather(*(one(f"/d{i}") for i in range(5)))
        await pool.close()
        return bodies

    assert asyncio.run(go()) == [page(f"/d{i}") for i in range(5)]
    assert keepalive_server.connections == 5 and lookups == ["localhost"]
