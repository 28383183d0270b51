"""Keep-alive HTTP/1.1 connections for the crawl's GETs, on aiohttp's protocol.

``aiohttp.ClientSession.request`` runs ~420,000 instructions a request on
this machine, ~260 Python calls: URL and header merging, a ``ClientRequest``
and ``ClientResponse`` with their properties, the connector's bookkeeping,
traces and timers. A crawler's GET needs little of that. Here a request is
one ``transport.write`` of a header block built mostly once per origin, and
the response is read by aiohttp's own ``ResponseHandler`` and C parser (the
same header limits, chunked and close-delimited bodies, and decompression in
bounded steps as the session; its errors map to the same failure kinds) from
a pool of idle connections per origin: ~170,000 instructions a request.

Only what this path does the same as the session takes it (see
``Pool.takes``): GETs without a body or per-request cookies, of ASCII URLs
with no "@" (userinfo) or "#"; with a proxy there is no pool at all. The session's cookie jar is shared, so
cookies a site sets are sent back on either path. As in aiohttp: a connection
found closed when reused is replaced once; addresses are tried by Happy
Eyeballs (RFC 8305, ``aiohappyeyeballs``) within the connect timeout; header
values are UTF-8 and control characters in them are refused; a host's
trailing dot is dropped for SNI and ``Host``. Unlike aiohttp, bytes past the
end of an answer are dropped with the connection (``_aiohttp._OneAnswer``).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from types import TracebackType

import aiohappyeyeballs
import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .. import errors
from ..errors import FetchError
from ..http import BAD_HEADER, check_header
from . import _aiohttp
from ._aiohttp import HeaderLimits, ResponseHandler

__all__ = ["HEADER_LIMITS", "Exchange", "Pool", "self_test"]

DNS_TTL = 300.0  # seconds an address lookup is kept (the session's ttl_dns_cache too)
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried too (aiohttp's)
SELF_TEST_TIMEOUT = 5.0  # seconds the self-test may take: an aiohttp that changed may hang it
# What a connection the server closed while it was idle raises on reuse
# (ResponseHandler turns socket errors into ClientOSError).
_RETRY_ON_REUSE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
_log = logging.getLogger("loopcrawl.net")
# What an answer's head may hold, on the pool and the session alike
# (docs/hardening.md, "Size"). aiohttp's default field bound, 8,190 bytes,
# refused answers every browser reads: a long Content-Security-Policy or
# Set-Cookie (Chrome takes 256 KiB of headers in all, Firefox 384 KiB, curl
# 100 KiB a line). aiohttp bounds fields and their number, not the block's
# bytes: 128 fields of 64 KiB, 8 MiB at most, below the body's 10 MiB cap.
HEADER_LIMITS = HeaderLimits(max_line_size=16384, max_field_size=65536, max_headers=128)


class _Sent:
    """What was sent: ``Exchange.request_info.headers``, as on aiohttp's response."""

    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


class _Origin:
    """One ``scheme://host[:port]``: where to connect, its header block, idle connections."""

    __slots__ = ("host", "idle", "port", "prefix", "sent", "tls")
    sent: _Sent  # the headers every request to it sends (unless it has its own)

    def __init__(self, origin: str, headers: CIMultiDict[str]) -> None:
        self.tls = origin.startswith("https:")
        url = URL(origin, encoded=True)
        self.host = (url.raw_host or "").rstrip(".")  # IPv6 without its brackets
        # An explicit port 0 stays 0 (refused, as the session refuses it), not 80.
        self.port = (443 if self.tls else 80) if url.port is None else url.port
        # Host first, as aiohttp sends it (the default port is gone: canonical),
        # unless the crawl's headers name one.
        sent = CIMultiDict(headers)
        if "Host" not in sent:
            host = f"[{self.host}]" if ":" in self.host else self.host
            sent = CIMultiDict([("Host", host if url.explicit_port is None
                                 else f"{host}:{url.port}"), *headers.items()])
        self.sent = _Sent(CIMultiDictProxy(sent))
        self.prefix = "".join(f"{k}: {v}\r\n" for k, v in sent.items())
        # None once the pool has let go of this origin: connections coming
        # back to it are closed.
        self.idle: list[tuple[ResponseHandler, float]] | None = []


class Exchange:
    """One response on a pooled connection: the part of ``aiohttp.ClientResponse``
    the fetcher reads (status, headers, ``content``, ``read``), as an async
    context manager that gives the connection back when the body was read."""

    __slots__ = ("_origin", "_proto", "content", "content_length", "headers",
                 "request_info", "status")

    def __init__(self, origin: _Origin, proto: ResponseHandler,
                 message: aiohttp.http.RawResponseMessage, payload: aiohttp.StreamReader,
                 sent: _Sent) -> None:
        self._origin = origin
        self._proto: ResponseHandler | None = proto
        self.status: int = message.code
        self.headers: CIMultiDictProxy[str] = message.headers
        self.content = payload
        length = self.headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self.request_info = sent

    async def read(self) -> bytes:
        return await self.content.read()

    async def __aenter__(self) -> Exchange:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release(reusable=et is None)

    def release(self, *, reusable: bool = True) -> None:
        proto, self._proto = self._proto, None
        if proto is None:
            return
        idle = self._origin.idle
        if (reusable and idle is not None and self.content.is_eof()
                and not proto.should_close and proto.is_connected()):
            idle.append((proto, time.monotonic()))
        else:
            proto.close()


class Pool:
    """Idle keep-alive connections by origin, and the requests that use them."""

    def __init__(self, headers: Mapping[str, str], *, connect_timeout: float,
                 cookie_jar: aiohttp.abc.AbstractCookieJar, keepalive: float = 30.0,
                 limits: HeaderLimits = HEADER_LIMITS,
                 tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the context https connections verify with (None: aiohttp's
        verified default, made when the first one opens)."""
        self._headers = CIMultiDict(headers)
        for k, v in self._headers.items():
            check_header(k, v)
        self._connect_timeout = connect_timeout
        self._jar = cookie_jar
        self._cookies = not isinstance(cookie_jar, aiohttp.DummyCookieJar)
        self._keepalive = keepalive
        self._limits = limits
        self._origins: dict[str, _Origin] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[aiohappyeyeballs.AddrInfoType]]] = {}
        # Lookups under way: the requests that open a host's first connections
        # together wait for one answer (as aiohttp's connector does).
        self._resolving: dict[tuple[str, int],
                              asyncio.Future[list[aiohappyeyeballs.AddrInfoType]]] = {}
        self._ssl = tls
        self._swept = time.monotonic()

    @staticmethod
    def takes(method: str, url: str, cookies: object, body: bytes | None) -> bool:
        """Whether this path serves a request (the session serves the rest).

        "@" may be userinfo (``http://user:pass@host/``: aiohttp sends it as
        basic auth); in a path it only costs the slower road."""
        return (method == "GET" and not body and cookies is None and url.isascii()
                and "#" not in url and "@" not in url)

    async def request(self, url: str, headers: Mapping[str, str] | None = None) -> Exchange:
        """GET ``url`` (canonical, http or https): the response, its body still to read."""
        at = url.find("/", url.index("//") + 2)
        if at < 0:
            at = len(url)
        key = url[:at]
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(key, self._headers)
        target = url[at:] or "/"
        if BAD_HEADER(target) or " " in target:
            raise aiohttp.InvalidURL(url)
        head, sent = origin.prefix, origin.sent
        jar = None
        if self._cookies and len(self._jar):
            jar = self._jar.filter_cookies(URL(url, encoded=True))
        if headers or jar:
            merged = CIMultiDict(sent.headers)
            for k, v in (headers or {}).items():
                check_header(k, v)
                merged[k] = v
            if jar:  # one Cookie header: the request's and the jar's, by name (as aiohttp)
                pairs = dict(p.strip().partition("=")[::2]
                             for p in merged.get("Cookie", "").split(";") if p.strip())
                pairs.update((m.key, m.coded_value) for m in jar.values())
                merged["Cookie"] = "; ".join(f"{k}={v}" for k, v in sorted(pairs.items()))
            sent = _Sent(CIMultiDictProxy(merged))
            head = "".join(f"{k}: {v}\r\n" for k, v in merged.items())
        data = f"GET {target} HTTP/1.1\r\n{head}\r\n".encode()
        proto = self._idle(origin) if origin.idle else None
        while True:
            reused = proto is not None
            if proto is None:
                proto = await self._connect(origin)
            try:
                message, payload = await self._exchange(proto, data)
            except _RETRY_ON_REUSE:
                proto.close()
                if reused:  # closed by the server while idle: once more, on a new one
                    proto = None
                    continue
                raise
            except BaseException:
                proto.close()
                raise
            break
        try:
            if self._cookies and "Set-Cookie" in message.headers:
                self._jar.update_cookies_from_headers(message.headers.getall("Set-Cookie"),
                                                      URL(url, encoded=True))
            return Exchange(origin, proto, message, payload, sent)
        except BaseException:
            proto.close()
            raise

    async def _exchange(self, proto: ResponseHandler, data: bytes
                        ) -> tuple[aiohttp.http.RawResponseMessage, aiohttp.StreamReader]:
        transport = proto.transport
        if transport is None or transport.is_closing():
            raise aiohttp.ServerDisconnectedError()
        _aiohttp.expect_response(proto)
        transport.write(data)
        while True:
            message, payload = await proto.read()
            code = message.code
            if code < 100 or code > 199 or code == 101:
                return message, payload
            # 1xx (103 Early Hints): the answer is still to come

    def _idle(self, origin: _Origin) -> ResponseHandler | None:
        """The most recently used idle connection still open, if any."""
        idle = origin.idle
        assert idle is not None
        stale = time.monotonic() - self._keepalive
        while idle:
            proto, since = idle.pop()
            # should_close: an answer nobody asked for came in while it was idle
            if since > stale and proto.is_connected() and not proto.should_close:
                return proto
            proto.close()
        return None

    async def _connect(self, origin: _Origin) -> ResponseHandler:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = _aiohttp.verified_context()
            tls = self._ssl
        where = f"{origin.host}:{origin.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                sock = await aiohappyeyeballs.start_connection(
                    await self._addresses(origin.host, origin.port),
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1)
                proto = await self._open(loop, sock, tls, origin.host if tls else None)
        except TimeoutError:
            raise aiohttp.ConnectionTimeoutError(
                f"no connection to {where} within {self._connect_timeout:g} s") from None
        except socket.gaierror as e:
            raise FetchError(f"cannot resolve {origin.host}: {e.strerror or e}",
                             errors.DNS_ERROR) from None
        except ssl.SSLError as e:  # the handshake: a certificate refused, no common protocol
            raise FetchError(f"TLS with {where} failed: {e}", errors.TLS_ERROR) from None
        except OSError as e:
            kind = errors.CONNECTION_REFUSED if e.errno == errno.ECONNREFUSED else (
                errors.CONNECTION_ERROR)
            raise FetchError(f"cannot connect to {where}: {e}", kind) from None
        return proto

    async def _open(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                    tls: ssl.SSLContext | None, server_hostname: str | None
                    ) -> ResponseHandler:
        """A connected socket as a pooled connection (TLS handshake included)."""
        _, proto = await loop.create_connection(
            lambda: _aiohttp.new_handler(loop), sock=sock, ssl=tls,
            server_hostname=server_hostname)
        try:
            _aiohttp.read_responses(proto, self._limits)
        except BaseException:  # an aiohttp that changed: the transport is ours to close
            proto.close()
            raise
        return proto

    async def _addresses(self, host: str, port: int) -> list[aiohappyeyeballs.AddrInfoType]:
        key = (host, port)
        got = self._dns.get(key)
        if got is not None and got[0] > time.monotonic():
            return got[1]
        pending = self._resolving.get(key)
        if pending is None:
            pending = self._resolving[key] = asyncio.ensure_future(self._lookup(host, port))
            pending.add_done_callback(lambda f: (self._resolving.pop(key, None),
                                                 f.cancelled() or f.exception()))
        # shield: one waiter's timeout or cancel leaves the lookup to the others
        return await asyncio.shield(pending)

    async def _lookup(self, host: str, port: int) -> list[aiohappyeyeballs.AddrInfoType]:
        infos: list[aiohappyeyeballs.AddrInfoType] = list(
            await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM))
        if len(self._dns) > 4096:
            self._dns.clear()
        self._dns[(host, port)] = (time.monotonic() + DNS_TTL, infos)
        return infos

    def sweep(self, now: float) -> None:
        """Close connections idle past the keep-alive time (a few times a minute)."""
        if now - self._swept < self._keepalive / 4:
            return
        self._swept = now
        stale = now - self._keepalive
        for key in list(self._origins):
            origin = self._origins[key]
            keep = []
            for proto, since in origin.idle or ():
                if since > stale:
                    keep.append((proto, since))
                else:
                    proto.close()
            origin.idle = keep
            if not keep and len(self._origins) > 1024:  # a broad crawl's passers-by
                origin.idle = None
                del self._origins[key]

    def idle(self) -> int:
        """How many connections wait to be reused."""
        return sum(len(o.idle or ()) for o in self._origins.values())

    async def close(self) -> None:
        """Close the idle connections, and wait (briefly) until they are: a TLS
        one is aborted, not shut down politely, or it may outlive the loop."""
        waits = []
        for origin in self._origins.values():
            for proto, _ in origin.idle or ():
                closed = proto.closed
                if proto.transport is not None and proto.transport.get_extra_info("sslcontext"):
                    proto.abort()
                else:
                    proto.close()
                if closed is not None:
                    waits.append(closed)
            origin.idle = None
        self._origins.clear()
        if waits:
            await asyncio.wait(waits, timeout=1.0)


# The self-test's answer to each request: headers and a gzip body in two chunks.
_TEST_BODY = b"<html><title>self-test</title></html>" * 4
_TEST_GZ = gzip.compress(_TEST_BODY, mtime=0)
_TEST_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                b"Transfer-Encoding: chunked\r\nX-Self-Test: 1\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                           for part in (_TEST_GZ[:10], _TEST_GZ[10:]))
                + b"0\r\n\r\n")
_verdict: bool | None = None  # once per process: None until the self-test ran


async def self_test() -> bool:
    """Whether the pool may be used with the aiohttp installed (once per process).

    The pool runs on aiohttp's private protocol (``_aiohttp.py``). Rather than
    trust signatures, two canned responses are sent down a socket pair and
    read through the pool's own steps (``_open``, ``request`` on the idle
    connection, the body streamed and inflated, the connection given back and
    taken again); anything unexpected turns the pool off for the process, with
    one warning, and every request takes aiohttp's session instead.
    """
    global _verdict
    if _verdict is None:
        try:
            async with asyncio.timeout(SELF_TEST_TIMEOUT):
                await _exercise()
            _verdict = True
        except Exception as e:  # whatever a changed aiohttp raises
            _verdict = False
            _log.warning("the keep-alive pool is off: it failed its self-test on aiohttp %s "
                         "(%s: %s); every request takes aiohttp's session",
                         aiohttp.__version__, type(e).__name__, e)
    return _verdict


async def _exercise() -> None:
    loop = asyncio.get_running_loop()
    pool = Pool({}, connect_timeout=5.0, cookie_jar=aiohttp.DummyCookieJar())
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    proto = None

    def serve() -> None:  # the other end: one answer per request head it reads
        for _ in range(theirs.recv(65536).count(b"\r\n\r\n")):
            theirs.send(_TEST_ANSWER)

    loop.add_reader(theirs.fileno(), serve)
    try:
        proto = await pool._open(loop, ours, None, None)
        origin = pool._origins["http://self-test"] = _Origin("http://self-test", pool._headers)
        assert origin.idle is not None
        origin.idle.append((proto, time.monotonic()))
        for _ in range(2):
            async with await pool.request("http://self-test/") as resp:
                chunks = []
                while chunk := await resp.content.readany():
                    chunks.append(chunk)
                if (resp.status, resp.headers.get("X-Self-Test"), b"".join(chunks)) != (
                        200, "1", _TEST_BODY) or not resp.content.is_eof():
                    raise RuntimeError(f"the canned answer read back as {resp.status} "
                                       f"{dict(resp.headers)} {b''.join(chunks)[:40]!r}")
        if pool.idle() != 1:
            raise RuntimeError("the connection was not kept for reuse")
    finally:
        if proto is None:
            ours.close()
        else:
            proto.close()
        await pool.close()
        loop.remove_reader(theirs.fileno())
        theirs.close()
