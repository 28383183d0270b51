"""loopcrawl's keep-alive pool (wire.py) against real servers: what a GET sends,
how connections are kept and replaced, and the body framings HTTP/1.1 allows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
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
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.client_proto import ResponseHandler

from loopcrawl.net.wire import Pool

from .conftest import LoopServer, PageServer
from .helpers import by_url, run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FAST = {"timeout": 3.0, "connect_timeout": 2.0, "read_timeout": 1.5, "retry_backoff": 0.05,
        "obey_robots": False}


class RawServer(LoopServer):
    """A TCP server on 127.0.0.1 (or ``host``) that answers with bytes a test
    writes by hand."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.handler = handler
        self.host = host
        self.connections = 0
        self.requests: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.wait_for(self.handler(r, w), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            w.close()

    async def _listen(self) -> Callable[[], Awaitable[object]]:
        server = await asyncio.start_server(self._conn, self.host, 0)
        self.port = server.sockets[0].getsockname()[1]

        async def close() -> None:
            server.close()
            await server.wait_closed()

        return close

    async def read_request(self, r: asyncio.StreamReader) -> bytes:
        head = await r.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head


@pytest.fixture(autouse=True)
def _the_pool_does_not_fall_back(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A pool that fails mid-crawl hands the rest to the session, which serves
    it as well (test_pool_fallback.py): a test of the pool must not pass that way."""
    with caplog.at_level(logging.WARNING, "loopcrawl.net"):
        yield
    warned = [r.getMessage() for r in caplog.get_records("call")]
    assert [m for m in warned if "pool failed" in m] == []


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


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts the pool looks up, in order (its DNS lookups counted)."""
    hosts: list[str] = []
    real = Pool._lookup

    async def counted(self: Pool, host: str, port: int) -> object:
        hosts.append(host)
        return await real(self, host, port)

    monkeypatch.setattr(Pool, "_lookup", counted)
    return hosts


def test_requests_opening_a_hosts_first_connections_share_one_lookup(
    keepalive_server: RawServer, lookups: list[str],
) -> None:

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


# -- pins found by make mutate (docs/testing.md, the fourth run: wire) ---------


def test_which_requests_the_pool_takes(pages: PageServer, pool_calls: list[str]) -> None:
    """A GET without a body or per-request cookies, of an ASCII URL without
    userinfo or fragment; the rest goes to the session, which does it."""
    url = "http://127.0.0.1/a?q=1"
    assert Pool.takes("GET", url, None, None) and Pool.takes("GET", url, None, b"")
    for method, u, cookies, body in [
        ("HEAD", url, None, None), ("POST", url, None, None), ("get", url, None, None),
        ("GET", url, None, b"x"), ("GET", url, {}, None), ("GET", url, {"a": "b"}, None),
        ("GET", "http://127.0.0.1/é", None, None), ("GET", url + "#f", None, None),
        ("GET", "http://u@127.0.0.1/", None, None),
    ]:
        assert not Pool.takes(method, u, cookies, body), (method, u, cookies, body)
    # Seen at the server: a HEAD the pool took would arrive as a GET.
    pages.add("/h")
    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go() -> list[int]:
        async with Fetcher(Settings(**FAST)) as f:  # type: ignore[arg-type]
            return [(await f.fetch(pages.url + "/h", method=m)).status for m in ("HEAD", "GET")]

    assert asyncio.run(go()) == [200, 200]
    assert pool_calls == [pages.url + "/h"]  # the GET only
    assert [h.path for h in pages.log] == ["/h", "/h"]


def _fetch_error(url: str, pool: bool, **settings: object) -> tuple[str, str]:
    """The kind and message a Fetcher's failed fetch of ``url`` ends with."""
    from loopcrawl.errors import FetchError
    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go() -> tuple[str, str]:
        async with Fetcher(Settings(**{**FAST, "http_pool": pool, **settings})  # type: ignore[arg-type]
                           ) as f:
            with pytest.raises(FetchError) as got:
                await f.fetch(url)
            return got.value.kind, str(got.value)

    return asyncio.run(go())


def test_connect_failures_are_the_sessions_kinds_and_say_where(
    tmp_path: Path, pool_calls: list[str],
) -> None:
    """Refused, unresolvable, a certificate refused, no connection within the
    connect timeout, another socket error: the same failure kinds on both paths; the pool's message
    names the host and port (and the resolver's or the socket's own words)."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now: refused
    try:
        socket.getaddrinfo("nonexistent.invalid", 80, type=socket.SOCK_STREAM)
        raise AssertionError("nonexistent.invalid resolved")
    except socket.gaierror as e:
        unresolved = e.strerror
    ca = trustme.CA()  # a CA nobody trusts: the certificate is refused
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    full = socket.socket()  # a full accept queue: the SYN is never answered
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(full.getsockname())
        fillers.append(s)
    late = full.getsockname()[1]
    try:
        with PageServer(ssl_context=server_ctx) as tls:
            tls.add("/")
            cases = {"refused": f"http://127.0.0.1:{port}/", "dns": "http://nonexistent.invalid/",
                     "tls": tls.url + "/", "late": f"http://127.0.0.1:{late}/",
                     # the broadcast address: the socket refuses it (unreachable, not refused)
                     "other": f"http://255.255.255.255:{port}/"}
            got = {(name, pool): _fetch_error(url, pool, connect_timeout=0.3)
                   for name, url in cases.items() for pool in (True, False)}
            assert tls.log == []  # the handshake failed: no request
    finally:
        for s in fillers:
            s.close()
        full.close()
    assert pool_calls == list(cases.values())
    for name, kind in [("refused", "connection_refused"), ("dns", "dns_error"),
                       ("tls", "tls_error"), ("late", "timeout"), ("other", "connection_error")]:
        assert got[name, True][0] == got[name, False][0] == kind, (name, got)
    assert got["refused", True][1] == (f"cannot connect to 127.0.0.1:{port}: [Errno 111] "
                                       f"Connect call failed ('127.0.0.1', {port})")
    assert got["dns", True][1] == f"cannot resolve nonexistent.invalid: {unresolved}"
    assert got["other", True][1].startswith(f"cannot connect to 255.255.255.255:{port}: [Errno ")
    assert got["tls", True][1].startswith(f"TLS with 127.0.0.1:{tls.port} failed: "
                                          "[SSL: CERTIFICATE_VERIFY_FAILED]")
    assert got["late", True][1] == ("no complete answer within the timeout "
                                    f"(no connection to 127.0.0.1:{late} within 0.3 s)")


def test_a_target_with_a_space_or_control_character_is_an_invalid_url(pages: PageServer) -> None:
    """Never sent (it would split the request line, or smuggle a header):
    refused before any connection. (A crawl's URLs are canonical: escaped.)"""
    for path in ("/a b", "/a\x7fb", "/a\rb", "/a\nX: y", "/a\x00b", "/a\x1fb"):
        kind, message = _fetch_error(pages.url + path, True)
        assert (kind, message) == ("invalid_url", f"invalid URL: {pages.url}{path}")
    assert pages.log == []


def test_interim_answers_are_skipped_as_the_session_skips_them() -> None:
    """1xx answers before the real one are skipped (100 and 199 alike), but
    101 is the answer; so is a status below 100."""

    async def interim(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            if path == "/1xx":
                w.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 199 Odd\r\nX-A: 1\r\n\r\n"
                        + answer(b"after two"))
            elif path == "/101":
                w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                        b"Connection: Upgrade\r\n\r\n")
                await w.drain()
                return  # the answer ends with the connection
            else:
                w.write(b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nlo")
            await w.drain()

    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go(pool: bool) -> list[tuple[int, bytes]]:
        async with Fetcher(Settings(**{**FAST, "http_pool": pool})) as f:  # type: ignore[arg-type]
            return [((r := await f.fetch(srv.url + p)).status, r.body)
                    for p in ("/1xx", "/101", "/99")]

    with RawServer(interim) as srv:
        got = {pool: asyncio.run(go(pool)) for pool in (True, False)}
    assert got[True] == got[False] == [(200, b"after two"), (101, b""), (99, b"lo")]


class _Inflates(ResponseHandler):
    """An aiohttp whose parser no longer inflates: the canned answer reads back gzipped."""

    def set_response_params(self, **kw: Any) -> None:
        super().set_response_params(**{**kw, "auto_decompress": False})


class _Deaf(ResponseHandler):
    """An aiohttp whose protocol renamed a keyword the pool passes."""

    def set_response_params(self, *, timer: object = None,  # type: ignore[override]
                            max_line: int = 8190) -> None:
        super().set_response_params(timer=timer)  # type: ignore[arg-type]


class _Forgets(ResponseHandler):
    """An aiohttp whose protocol will not keep a connection past its second answer."""

    answers = 0

    def data_received(self, data: bytes) -> None:
        self.answers += bool(data)  # the canned answers come one by one, each in one piece
        super().data_received(data)

    @property
    def should_close(self) -> bool:
        return self.answers >= 2 or super().should_close


class _Mute(ResponseHandler):
    """An aiohttp whose protocol never hands an answer over: the self-test would hang."""

    def data_received(self, data: bytes) -> None:
        pass


@pytest.mark.parametrize("broken", [_Inflates, _Deaf, _Forgets, _Mute],
                         ids=["body", "signature", "reuse", "hang"])
def test_a_failed_self_test_says_why_word_for_word(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, broken: type,
) -> None:
    from loopcrawl.net import _aiohttp, wire

    monkeypatch.setattr(_aiohttp, "ResponseHandler", broken)
    monkeypatch.setattr(wire, "_verdict", None)
    monkeypatch.setattr(wire, "SELF_TEST_TIMEOUT", 0.3)  # its bound (5 s), shortened
    with caplog.at_level(logging.WARNING, "loopcrawl.net"):
        assert asyncio.run(wire.self_test()) is False
        assert asyncio.run(wire.self_test()) is False  # decided once: no second warning
    if broken is _Inflates:
        headers = {"Content-Type": "text/html", "Content-Encoding": "gzip",
                   "Transfer-Encoding": "chunked", "X-Self-Test": "1"}
        why = f"RuntimeError: the canned answer read back as 200 {headers} {wire._TEST_GZ[:40]!r}"
    elif broken is _Forgets:
        why = "RuntimeError: the connection was not kept for reuse"
    elif broken is _Mute:
        why = "TimeoutError: "
    else:
        why = ("TypeError: _Deaf.set_response_params() got an unexpected keyword "
               "argument 'read_until_eof'")
    assert [r.getMessage() for r in caplog.records] == [
        f"the keep-alive pool is off: it failed its self-test on aiohttp {aiohttp.__version__} "
        f"({why}); every request takes aiohttp's session"]


async def _read_one(pool: Pool, url: str) -> bytes:
    async with await pool.request(url) as resp:
        return await resp.read()


def test_the_sweep_runs_a_few_times_per_keepalive_and_closes_what_is_past_it(
    keepalive_server: RawServer,
) -> None:
    """At most every quarter of the keep-alive time (8 s: every 2 s): a
    connection gone stale in between waits for the next sweep. A connection
    idle exactly the keep-alive time is past it."""

    def new() -> Pool:
        return Pool({"User-Agent": "x"}, connect_timeout=2.0, keepalive=8.0,
                    cookie_jar=aiohttp.DummyCookieJar())

    async def go() -> list[int]:
        pool = new()
        await _read_one(pool, keepalive_server.url + "/a")
        t = time.monotonic()  # the connection is idle since just before t
        a = math.floor(t) + 7.5  # exact in binary: (a + 2.0) - a == 2.0
        counts = []
        for now in (a, a + 1.75, a + 2.0):  # kept; not swept (stale by then); swept
            pool.sweep(now)
            counts.append(pool.idle())
        await pool.close()
        # The boundary, on a new pool: idle since ``since``, swept at since + 8.0.
        pool = new()
        await _read_one(pool, keepalive_server.url + "/b")
        (origin,) = pool._origins.values()
        assert origin.idle
        since = origin.idle[0][1]
        assert (since + 8.0) - 8.0 == since  # no rounding: exactly the keep-alive time
        pool.sweep(since + 8.0)
        counts.append(pool.idle())
        await pool.close()
        return counts

    assert asyncio.run(go()) == [1, 1, 0, 0]


def test_address_lookups_are_kept_for_their_ttl_and_bounded(
    keepalive_server: RawServer, lookups: list[str],
) -> None:
    """A host's second connection uses the kept answer; once it expired the
    host is looked up again. The answers kept are bounded: past 4,096 they
    are dropped, all at once (at 4,096 not yet)."""
    url = f"http://localhost:{keepalive_server.port}"

    async def go() -> tuple[list[str], float, list[int]]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        async with await pool.request(url + "/1") as first:  # busy: /2 needs a connection
            assert await _read_one(pool, url + "/2") == page("/2")
            await first.read()
        key = ("localhost", keepalive_server.port)
        expires, infos = pool._dns[key]
        ttl = expires - time.monotonic()
        pool._dns[key] = (time.monotonic() - 0.001, infos)  # expired
        pool.sweep(time.monotonic() + 1000.0)  # no idle connection left: /3 and /4 open two
        async with await pool.request(url + "/3") as third, await pool.request(url + "/4") as fourth:
            assert (await third.read(), await fourth.read()) == (page("/3"), page("/4"))
        looked, sizes = list(lookups), []
        for junk in (4096, 4097):  # the answers kept before a new lookup
            pool._dns = {(f"h{i}.test", 80): (time.monotonic() + 60, infos) for i in range(junk)}
            await pool._lookup("localhost", keepalive_server.port)
            sizes.append(len(pool._dns))
        await pool.close()
        return looked, ttl, sizes

    looked, ttl, sizes = asyncio.run(go())
    # /1 looked up; /2 used the answer; /3 looked up again; /4 used that answer.
    assert looked == ["localhost", "localhost"]
    assert 299.0 < ttl <= 300.0  # aiohttp's ttl_dns_cache, as the session's connector has
    assert sizes == [4097, 1]
    assert keepalive_server.connections == 2 + 2


def test_happy_eyeballs_interleaves_the_address_families(pages: PageServer) -> None:
    """Two IPv6 addresses, then an IPv4 one (RFC 8305 §4: interleaved by
    family, as aiohttp's connector does): the IPv4 address is the second tried,
    before the second IPv6 one. The first swallows the connection."""
    dead = socket.socket(socket.AF_INET6)
    dead.bind(("::1", 0))
    dead.listen(0)
    fillers = []
    for _ in range(8):  # fill the backlog: the next SYN gets no answer
        s = socket.socket(socket.AF_INET6)
        s.setblocking(False)
        s.connect_ex(dead.getsockname()[:2])
        fillers.append(s)
    pages.add("/", title="v4")

    async def go(v6: PageServer) -> bytes:
        pool = Pool({"User-Agent": "x"}, connect_timeout=3.0, cookie_jar=aiohttp.DummyCookieJar())
        port = dead.getsockname()[1]
        v6_ = socket.AF_INET6
        pool._dns[("example.test", port)] = (time.monotonic() + 60, [
            (v6_, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (v6_, socket.SOCK_STREAM, 6, "", ("::1", v6.port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", pages.port))])
        body = await _read_one(pool, f"http://example.test:{port}/")
        await pool.close()
        return body

    try:
        with PageServer(hosts=("::1",)) as v6:
            v6.add("/", title="v6")
            body = asyncio.run(go(v6))
    finally:
        for s in fillers:
            s.close()
        dead.close()
    assert b"<title>v4</title>" in body
    assert v6.log == [] and len(pages.log) == 1


def test_the_sweep_lets_go_of_origins_past_1024_not_of_a_busy_one(
    keepalive_server: RawServer,
) -> None:
    """A broad crawl's passers-by: past 1,024 origins the sweep drops those
    without an idle connection, oldest first, down to 1,024 (at 1,024 none).
    A connection given back to a dropped origin is closed, not kept; below
    the bound a busy origin's connection is kept when it comes back."""

    async def go() -> list[object]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, keepalive=8.0,
                    cookie_jar=aiohttp.DummyCookieJar())
        out: list[object] = []
        busy = await pool.request(keepalive_server.url + "/busy")  # its body still to read
        now = time.monotonic() + 10.0
        pool.sweep(now)  # one origin, busy: kept
        await busy.read()
        busy.release()
        out.append(pool.idle())
        for i in range(1023):  # origins without a connection (a refused target makes one)
            with pytest.raises(aiohttp.InvalidURL):
                await pool.request(f"http://h{i}.test/a b")
        busy = await pool.request(keepalive_server.url + "/busy")  # the oldest origin
        now += 10.0
        pool.sweep(now)  # 1,024 origins: the busy one too (not idle now) stays
        out.append(len(pool._origins))
        await busy.read()
        busy.release()
        out.append(pool.idle())
        busy = await pool.request(keepalive_server.url + "/busy")
        with pytest.raises(aiohttp.InvalidURL):
            await pool.request("http://h1023.test/a b")
        now += 10.0
        pool.sweep(now)  # 1,025: the oldest without an idle connection goes, the busy one
        out.append(len(pool._origins))
        await busy.read()
        busy.release()
        out.append(pool.idle())  # closed, not kept for a dropped origin
        await pool.close()
        return out

    assert asyncio.run(go()) == [1, 1024, 1, 1024, 0]
    assert keepalive_server.connections == 1  # kept while its origin was


def test_a_connection_is_kept_only_after_a_whole_answer_that_allows_it() -> None:
    """Kept: a body read to its end, on a connection the server keeps open.
    Closed (the server sees it end), not kept: ``Connection: close``, HTTP/1.0
    without keep-alive, a body left unread, an error inside ``async with``."""
    ends: list[str] = []

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        path = ""
        try:
            while True:
                path = target(await srv.read_request(r))
                if path == "/close":
                    w.write(answer(b"closing", "Connection: close\r\n"))
                elif path == "/http10":
                    w.write(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold.")
                elif path == "/part":
                    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
                else:
                    w.write(answer(page(path)))
                await w.drain()
        except asyncio.IncompleteReadError:
            ends.append(path)  # the client ended the connection after ``path``
            raise

    async def go() -> list[int]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        idle = []
        for path in ("/close", "/http10", "/part", "/error", "/kept"):
            with contextlib.suppress(ZeroDivisionError):
                async with await pool.request(srv.url + path) as resp:
                    if path == "/part":
                        assert len(await resp.content.readexactly(1000)) == 1000
                    else:
                        await resp.read()
                    if path == "/error":
                        raise ZeroDivisionError  # e.g. a body above the size cap
            idle.append(pool.idle())
        for _ in range(200):  # the server's ends of the connections closed by now
            if len(ends) >= 4:
                break
            await asyncio.sleep(0.01)
        await pool.close()
        return idle

    with RawServer(serve) as srv:
        assert asyncio.run(go()) == [0, 0, 0, 0, 1]
        assert srv.connections == 5
    assert sorted(ends[:4]) == ["/close", "/error", "/http10", "/part"]


def test_bytes_past_an_answer_are_dropped_with_the_connection_not_the_answer() -> None:
    """A Content-Length short of its body (counted in characters, "é" being
    two bytes), a 204 with a body, a 103 then an answer then junk, each in
    one write; a 100 alone, then the answer and junk; a body whose last part
    comes with junk in a later read; a
    header block whose end straddles two reads, junk after its body: the
    answer is read up to its length, as browsers and curl read it, and its
    connection is not reused (what came past it answers nothing). A chunked
    answer whose header block straddles two reads, or three ending one, is read
    whole and its connection kept. aiohttp's
    parser took those bytes for the next status line, and the answer parsed
    with them was lost: a connection error, three times over with the
    retries."""
    body = "<title>café</title>".encode()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            if path == "/chars":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body.decode()), body))
            elif path == "/204":
                w.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nbody")
            elif path == "/103":
                w.write(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
                        + answer(b"hinted") + b"junk")
            elif path == "/early":  # a 100 alone in one read, the answer in the next
                w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await w.drain()
                await asyncio.sleep(0.05)
                w.write(answer(b"late") + b"junk")
            elif path in ("/split", "/heads"):
                whole = answer(b"split body") + b"junk\r\n\r\n"  # a line: the parser fails
                cut = whole.index(b"\r\n\r\n") + (3 if path == "/heads" else 9)
                w.write(whole[:cut])
                await w.drain()
                await asyncio.sleep(0.05)  # two reads
                w.write(whole[cut:])
            elif path in ("/hchunk", "/hend"):  # chunked, its header block over two reads
                head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r"
                # /hend: the header block in three reads, the last its end, the body next
                for part in (head[:17], head[17:], b"\n") if path == "/hend" else (head,):
                    w.write(part)
                    await w.drain()
                    await asyncio.sleep(0.05)
                w.write((b"" if path == "/hend" else b"\n") + b"4\r\nbody\r\n0\r\n\r\n")
            else:
                w.write(answer(path.encode()))
            await w.drain()

    async def go() -> list[tuple[int, bytes, int]]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        got = []
        for path in ("/chars", "/next", "/204", "/103", "/early", "/split", "/heads", "/hchunk",
                     "/hend", "/kept", "/again"):
            async with await pool.request(srv.url + path) as resp:
                status, data = resp.status, await asyncio.wait_for(resp.read(), 2.0)
            got.append((status, data, pool.idle()))
        await pool.close()
        return got

    with RawServer(serve) as srv:
        assert asyncio.run(go()) == [(200, body[:-1], 0), (200, b"/next", 1), (204, b"", 0),
                                     (200, b"hinted", 0), (200, b"late", 0),
                                     (200, b"split body", 0),
                                     (200, b"split body", 0), (200, b"body", 1),
                                     (200, b"body", 1), (200, b"/kept", 1),
                                     (200, b"/again", 1)]
        # /chars, /next and /204, /103, /early, /split, /heads, /hchunk to /again
        assert srv.connections == 7


def test_an_answers_end_is_kept_across_reads_and_what_follows_ends_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An answer whose body comes in later reads is read up to its length
    however it is cut (two reads, three, after a 100 in the same read, a
    header block over two reads after a 100), and what follows it, even a
    byte arriving while the connection is idle or the start of a well-formed
    answer (which aiohttp's parser would keep waiting for), ends its
    connection: nobody asked for it, so it must not be taken for the next
    answer or leave the connection reusable. A chunked answer is whole when
    its last chunk comes; what comes after one whole in its read ends the
    connection too, and one read in two parts is kept; what follows its end
    in a later read is kept by the parser, and the next answer is read by a
    new one (the 404 it would otherwise have read is not taken)."""
    body = b"0123456789" * 30
    # A valid start the parser waits on: the next answer's status line would
    # become this header's value, and its status this 404.
    more = b"HTTP/1.1 404 Not Found\r\nX-Unasked: "
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            whole = answer(body)
            parts = {  # each part in its own read, 50 ms apart
                "/idle": [whole, b"H"],  # one byte after a whole answer, while idle
                "/204-idle": [b"HTTP/1.1 204 No Content\r\n\r\n", b"H"],
                "/same": [whole + more],  # in the same read
                "/204-same": [b"HTTP/1.1 204 No Content\r\n\r\n" + more],
                "/chunk-same": [chunked + b"4\r\nbody\r\n0\r\n\r\n" + more],
                "/late": [whole[:-200], whole[-200:] + more],
                "/three": [whole[:-200], whole[-200:-100], whole[-100:] + more],
                "/hinted": [b"HTTP/1.1 102 Processing\r\n\r\n" + whole[:-200],
                            whole[-200:] + more],
                "/straddle": [b"HTTP/1.1 100 Continue\r\n\r\n" + whole[:30],
                              whole[30:] + b"junk\r\n\r\n"],
                "/chunk-whole": [chunked + b"4\r\nbody\r\n0\r\n\r\n", b"H"],
                "/chunk-late": [chunked + b"4\r\nbo", b"dy\r\n0\r\n\r\n"],
                "/chunk-three": [chunked + b"4\r\nbo", b"dy\r\n", b"0\r\n\r\n"],
                "/chunk-lf": [chunked + b"4\r\nbody\r\n0\r\n\n"],  # its end a bare LF: kept
                # past a chunked answer's end in a later read: kept by the parser,
                # which the next answer does not inherit (a new parser reads it)
                "/chunk-more": [chunked + b"4\r\nbo", b"dy\r\n0\r\n\r\n" + more],
            }.get(path, [answer(path.encode())])
            for i, part in enumerate(parts):
                if i:  # /chunk-more's parts in one read would be bytes past: its end closes
                    await asyncio.sleep(0.2 if path == "/chunk-more" else 0.05)
                w.write(part)
                await w.drain()

    async def go() -> list[tuple[int, bytes, int]]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        got = []
        for path in ("/idle", "/204-idle", "/same", "/204-same", "/chunk-same", "/late", "/three", "/hinted", "/straddle", "/chunk-whole",
                     "/chunk-late", "/chunk-three", "/chunk-more", "/chunk-lf", "/kept"):
            async with await pool.request(srv.url + path) as resp:
                status, data = resp.status, await asyncio.wait_for(resp.read(), 2.0)
            if path.endswith(("-whole", "-idle")) or path == "/idle":
                await asyncio.sleep(0.15)  # its last byte comes while the connection is idle
            got.append((status, data, srv.connections))
        await pool.close()
        return got

    with RawServer(serve) as srv, caplog.at_level(logging.ERROR, "asyncio"):
        got = asyncio.run(go())
    assert [status for status, _, _ in got] == [200, 204, 200, 204] + [200] * 11
    assert [(data, n) for _, data, n in got] == [
        (body, 1), (b"", 2), (body, 3), (b"", 4), (b"body", 5), (body, 6), (body, 7), (body, 8),
        (body, 9), (b"body", 10), (b"body", 11), (b"body", 11), (b"body", 11), (b"body", 11),
        (b"/kept", 11)]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_a_header_block_is_read_the_same_however_the_reads_cut_it() -> None:
    """Interim answers (a 100, a 103), a 101, a close-delimited answer, one
    with its length twice, blank lines before a status line (which a client
    skips): each the same whether its header block comes in
    one read or is cut across two or three (a big header block always is),
    cut inside its empty line too, and what follows the final answer still
    cut off."""

    heads = {
        # two interim answers (100: 25 bytes, then 103: 44)
        "/100": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
        "/102": b"HTTP/1.1 102 Processing\r\n\r\n",  # 27 bytes, alone in a read
        "/101bare": b"HTTP/1.1 101 Switching Protocols\r\n\r\n",  # no Upgrade header
        "/blank": b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",  # blank lines first
        "/100blank": b"HTTP/1.1 100 Continue\r\n\r\n\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",
        "/101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
        "/close": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
        "/twice": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
    }

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path, cut = target(await srv.read_request(r)).rsplit("/", 1)
            late = answer(b"late") + b"junk"
            whole = heads[path] + {"/100": late, "/102": late, "/101bare": b"xyz",
                                   "/blank": b"bodyjunk\r\n\r\n", "/100blank": b"bodyjunk\r\n\r\n",
                                   "/101": b"", "/close": b"to the end", "/twice": b"body"}[path]
            cuts = [0, *sorted({int(c) % len(whole) for c in cut.split(",") if c}), len(whole)]
            for a, b in itertools.pairwise(cuts):
                w.write(whole[a:b])
                await w.drain()
                await asyncio.sleep(0.03)  # each part its own read
            if path in ("/101", "/101bare", "/close"):
                return  # the answer ends with the connection

    async def go(path: str) -> tuple[int, bytes, int]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        async with await pool.request(srv.url + path) as resp:
            status, data = resp.status, await asyncio.wait_for(resp.read(), 2.0)
        idle = pool.idle()
        await pool.close()
        return status, data, idle

    # where the reads are cut (byte offsets, negative from the end): none, inside a
    # block, inside its empty line (-1, -3: before an LF); the 100 at 10 and 25 (its
    # end), the 103 at 26 and 40, its end at 68 (the answer's block begins the next
    # read), the answer's block at 80: after two interim answers in the first read
    cases = {"/100": ("", "10", "25", "10,25", "-1", "26", "26,40", "68", "80", "30,80"),
             "/102": ("27",), "/101": ("", "20", "-1", "-3"), "/101bare": ("", "10", "-2"),
             "/blank": ("", "2", "3", "42"), "/100blank": ("", "67", "27"),
             "/close": ("", "20", "-1", "-2"), "/twice": ("", "10", "30", "-4", "-5", "-6")}
    with RawServer(serve) as srv:
        for path, cuts in cases.items():
            heard = {cut: asyncio.run(go(f"{path}/{cut}")) for cut in cuts}
            assert set(heard.values()) == {{"/100": (200, b"late", 0), "/102": (200, b"late", 0),
                                             "/101": (101, b"", 0), "/101bare": (101, b"", 0),
                                             "/blank": (200, b"body", 0),
                                             "/100blank": (200, b"body", 0),
                                             "/close": (200, b"to the end", 0),
                                             "/twice": (200, b"body", 1)}[path]}, (path, heard)


def test_content_lengths_that_agree_are_one_and_those_that_differ_an_error() -> None:
    """Content-Length twice with one value, or ``4, 4``, is that length (RFC
    9110 §8.6 allows it; browsers read it; a proxy's and a framework's header
    both sent), after a 100 too: aiohttp's parser refused such an answer. Two lengths that
    differ stay an error (two framings are how answers are smuggled)."""

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            if path == "/hinted":  # after a 100 (the 1xx range's lower bound), in the same read
                w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                path = "/twice"
            lengths = {"/twice": b"Content-Length: 4\r\ncontent-length:4 \r\n",
                       "/comma": b"Content-Length: 4, 4\r\n",
                       "/differ": b"Content-Length: 4\r\nContent-Length: 3\r\n"}
            w.write(b"HTTP/1.1 200 OK\r\n%s\r\nbody" % lengths.get(path, b"Content-Length: 4\r\n"))
            await w.drain()

    async def go() -> list[object]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        got: list[object] = []
        for path in ("/twice", "/comma", "/hinted", "/differ", "/after"):
            try:
                async with await pool.request(srv.url + path) as resp:
                    lengths, body = resp.headers.getall("Content-Length"), await resp.read()
                got.append((lengths, body, pool.idle()))
            except aiohttp.http_exceptions.HttpProcessingError as e:
                got.append(("Duplicate Content-Length" in str(e), pool.idle()))
        await pool.close()
        return got

    with RawServer(serve) as srv:
        assert asyncio.run(go()) == [(["4"], b"body", 1), (["4"], b"body", 1),
                                     (["4"], b"body", 1), (True, 0), (["4"], b"body", 1)]
        assert srv.connections == 2  # the answer refused ends its connection


def test_the_pool_sends_the_sessions_request_line_for_line(
    pool_calls: list[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """The request line, Host first, and every header line byte for byte
    (their order after Host aside), as the session writes them: an origin without a path, a path holding ``//``, an IPv6 host, the
    crawl's credentials and Cookie header merged with the cookies a site set
    (by name, the jar's last). Every request served by the pool itself: none
    handed to the session after a failure."""

    async def keep(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            # By family, not port: 127.0.0.1 and ::1 may be given the same port.
            path = target(await (v6 if ":" in w.get_extra_info("sockname")[0] else v4
                                 ).read_request(r))
            w.write(answer(b"ok", "Set-Cookie: sid=s1; Path=/\r\nSet-Cookie: z=9; Path=/\r\n"
                           if path == "/set" else ""))
            await w.drain()

    from loopcrawl.net.fetcher import Fetcher
    from loopcrawl.settings import Settings

    async def go(pool: bool, urls: list[str]) -> list[list[tuple[str, str]]]:
        """The headers each fetch says it sent (a WARC's request record, a spider's)."""
        settings = Settings(**{**FAST, "http_pool": pool},  # type: ignore[arg-type]
                            headers={"X-Every": "yes", "Authorization": "Basic eDp5",
                                     "Cookie": "b=2; a=1;; tok=x=y; sid=o=ld"})
        said = []
        async with Fetcher(settings) as f:
            for url in urls:
                fetched = await f.fetch(url)
                assert fetched.status == 200
                said.append(sorted(fetched.request_headers.items()))
        return said

    with (caplog.at_level(logging.WARNING, "loopcrawl.net"), RawServer(keep) as v4,
          RawServer(keep, host="::1") as v6):
        urls = [v4.url, v4.url + "/a//b?q=%20&r=/", v6.url + "/six", v4.url + "/set",
                v4.url + "/after", v6.url + "/six-after"]
        sent, said = {}, {}
        for pool in (True, False):
            v4.requests.clear()
            v6.requests.clear()
            said[pool] = asyncio.run(go(pool, urls))
            sent[pool] = (v4.requests[:], v6.requests[:])

    def lines(head: bytes) -> tuple[bytes, bytes, list[bytes]]:
        request, host, *rest = head.split(b"\r\n")
        return request, host, sorted(rest)

    assert [[lines(h) for h in s] for s in sent[True]] == [[lines(h) for h in s]
                                                           for s in sent[False]]
    assert said[True] == said[False]
    assert ("Cookie", "a=1; b=2; sid=s1; tok=x=y; z=9") in said[True][4]
    assert pool_calls == urls
    assert caplog.records == []  # no "keep-alive pool failed"
    first, *_, after = sent[True][0]
    assert first.startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nCookie: a=1; b=2; sid=s1; tok=x=y; z=9\r\n" in after
    assert sent[True][1][0].startswith(b"GET /six HTTP/1.1\r\nHost: [::1]:")


def test_a_default_port_is_not_in_host(keepalive_server: RawServer) -> None:
    """``http://example.test/`` (port 80) sends ``Host: example.test``, as aiohttp does."""

    async def go() -> bytes:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        pool._dns[("example.test", 80)] = (time.monotonic() + 60, [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", keepalive_server.port))])
        body = await _read_one(pool, "http://example.test/")
        await pool.close()
        return body

    assert asyncio.run(go()) == page("/")
    assert keepalive_server.requests == [b"GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: x\r\n\r\n"]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_close_ends_the_idle_connections_before_it_returns(tls: bool) -> None:
    """Closed by the time ``close`` returns (a loop that ends right after
    leaves nothing open); a TLS one aborted, not shut down politely: this
    server answers, then never reads again (a polite shutdown would wait for
    its close_notify)."""
    import psutil

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    lsn = socket.create_server(("127.0.0.1", 0))
    port = lsn.getsockname()[1]
    done = threading.Event()

    def serve() -> None:
        conn, _ = lsn.accept()
        with conn, (server_ctx.wrap_socket(conn, server_side=True) if tls else conn) as c:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += c.recv(1)
            c.sendall(answer(b"once"))
            done.wait(10)  # never reads again

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def ours() -> int:
        return sum(1 for c in psutil.Process().net_connections("tcp")
                   if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED")

    async def go() -> tuple[int, int]:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, tls=client_ctx,
                    cookie_jar=aiohttp.DummyCookieJar())
        assert await _read_one(pool, f"{'https' if tls else 'http'}://127.0.0.1:{port}/") == b"once"
        before = ours()
        await pool.close()
        return before, ours()  # no turn of the loop in between

    try:
        assert asyncio.run(go()) == (1, 0)
    finally:
        done.set()
        thread.join(10)
        lsn.close()


def test_a_connection_given_back_after_close_is_closed(keepalive_server: RawServer) -> None:
    """A request still reading when the pool closes (a crawl stopped): its
    connection is closed when it comes back, not kept."""
    import psutil

    def ours() -> int:
        return sum(1 for c in psutil.Process().net_connections("tcp")
                   if c.raddr and c.raddr.port == keepalive_server.port
                   and c.status == "ESTABLISHED")

    async def go() -> tuple[bytes, int, int]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        busy = await pool.request(keepalive_server.url + "/a")
        await pool.close()
        async with busy:
            body = await busy.read()
        for _ in range(50):  # a closed transport lets go of its socket on the next turns
            if not ours():
                break
            await asyncio.sleep(0.01)
        return body, pool.idle(), ours()

    assert asyncio.run(go()) == (page("/a"), 0, 0)


def test_a_lookup_left_when_the_loop_ends_logs_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The request that started a lookup is cancelled (its lookup goes on for
    the others: shielded); the loop ends before the answer, cancelling it:
    no "Exception in callback", no "exception was never retrieved"."""
    real = Pool._lookup
    started = []

    async def slow(self: Pool, host: str, port: int) -> object:
        started.append(host)
        await asyncio.sleep(30)  # a resolver that does not answer in time
        return await real(self, host, port)

    monkeypatch.setattr(Pool, "_lookup", slow)

    async def go() -> bool:
        pool = Pool({"User-Agent": "x"}, connect_timeout=5.0, cookie_jar=aiohttp.DummyCookieJar())
        request = asyncio.ensure_future(pool.request("http://slow.test/"))
        for _ in range(100):
            if started:
                break
            await asyncio.sleep(0.01)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        return bool(pool._resolving)  # the lookup goes on

    with caplog.at_level(logging.WARNING, "asyncio"):
        assert asyncio.run(go()) is True
    assert started == ["slow.test"]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_a_long_header_field_is_read_after_a_failed_first_parse_too() -> None:
    """An answer the pool's first parser fails on is read again by a new one
    (``_OneAnswer._renew``), with the pool's header limits, not aiohttp's
    defaults: a 10,000-byte field (past aiohttp's 8,190) in an answer whose
    Content-Length is given twice, or followed by bytes past its end, is
    read; the next request, on a new connection, too."""
    long = b"X-Long: " + b"a" * 10000 + b"\r\n"

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = target(await srv.read_request(r))
            if path == "/twice":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n%sContent-Length: 2\r\n\r\nok"
                        % long)
            elif path == "/past":  # a line after the body: the first parser fails on it
                w.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nokjunk\r\n\r\n" % long)
            else:
                w.write(answer(path.encode()))
            await w.drain()

    async def go() -> list[tuple[int, int, bytes, int]]:
        pool = Pool({"User-Agent": "x"}, connect_timeout=2.0, cookie_jar=aiohttp.DummyCookieJar())
        got = []
        for path in ("/twice", "/past", "/next"):
            async with await pool.request(srv.url + path) as resp:
                field, data = resp.headers.get("X-Long", ""), await resp.read()
            got.append((resp.status, len(field), data, pool.idle()))
        await pool.close()
        return got

    with RawServer(serve) as srv:
        assert asyncio.run(go()) == [(200, 10000, b"ok", 1), (200, 10000, b"ok", 0),
                                     (200, 0, b"/next", 1)]
        assert srv.connections == 2  # /past's connection is not reused


@pytest.mark.parametrize("pool", [True, False], ids=["pool", "session"])
def test_a_header_block_that_never_ends_is_refused_within_its_bounds(pool: bool) -> None:
    """A head streamed without its empty line (1 MB a write, 40 MB at most)
    is ``too_large`` on both paths, once the bytes read are past the head's
    bounds (a 16 KiB status line, 128 fields of 64 KiB: 8.4 MB): the pool,
    which holds a block cut across reads until it is whole, holds no more."""
    from loopcrawl.net.wire import HEADER_LIMITS

    most = HEADER_LIMITS["max_line_size"] + HEADER_LIMITS["max_headers"] * HEADER_LIMITS[
        "max_field_size"]
    sent = [0]

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\n")
        lines = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 990) for i in range(1000))
        while sent[0] < 40_000_000:
            w.write(lines)
            await w.drain()
            sent[0] += len(lines)

    with RawServer(serve) as srv:
        recs, _ = run(srv.url + "/", **{**FAST, "retries": 0, "http_pool": pool})
    assert [(r.error, (r.message or "").split(":")[0]) for r in recs] == [
        ("too_large", "LineTooLong" if pool else "BadHttpMessage")]
    if pool:
        assert (recs[0].message or "").endswith(
            f"Got more than {most} bytes when reading: 'a header block'.")
        assert most < sent[0] < most + 8_000_000  # what the socket buffers held besides


def test_a_header_block_is_held_up_to_its_bound_not_past_it() -> None:
    """Exactly the bound (8,404,992 bytes) of a header block not yet ended
    is held (the connection stays open for the rest); one line more is
    ``too_large``."""
    from loopcrawl.net.wire import HEADER_LIMITS

    most = HEADER_LIMITS["max_line_size"] + HEADER_LIMITS["max_headers"] * HEADER_LIMITS[
        "max_field_size"]
    status = b"HTTP/1.1 200 OK\r\n"
    lines, rest = divmod(most - len(status), 1000)
    head = status + (b"X: " + b"a" * 995 + b"\r\n") * lines + b"X: " + b"a" * (rest - 5) + b"\r\n"
    assert len(head) == most
    held = []

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(head)
        await w.drain()
        try:  # the client, if it gave up, has closed by now
            held.append(await asyncio.wait_for(r.read(1), 0.3))
        except TimeoutError:
            held.append(None)
        w.write(b"X: b\r\n")
        await w.drain()
        await asyncio.wait_for(r.read(1), 5)

    with RawServer(serve) as srv:
        recs, _ = run(srv.url + "/", **{**FAST, "retries": 0})
    assert held == [None]
    assert [r.error for r in recs] == ["too_large"]
