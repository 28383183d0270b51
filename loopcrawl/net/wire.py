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
trailing dot is dropped for SNI and ``Host``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import ssl
import time
from collections.abc import Mapping
from types import TracebackType

import aiohappyeyeballs
import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

try:  # aiohttp's internal protocol class: checked, since the version pin allows 3.x
    from aiohttp.client_proto import ResponseHandler

    AVAILABLE = {"read_until_eof", "max_line_size"} <= set(
        inspect.signature(ResponseHandler.set_response_params).parameters)
except (ImportError, AttributeError, TypeError, ValueError):
    AVAILABLE = False  # an aiohttp that changed it: every request takes the session

__all__ = ["AVAILABLE", "Exchange", "Pool"]

DNS_TTL = 300.0  # seconds an address lookup is kept (the session's ttl_dns_cache too)
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried too (aiohttp's)
# Control characters other than tab, as aiohttp refuses them: header injection.
_BAD_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search
# What a connection the server closed while it was idle raises on reuse
# (ResponseHandler turns socket errors into ClientOSError).
_RETRY_ON_REUSE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def check_header(name: str, value: str) -> None:
    """Refuse a header that could smuggle another one (CR, LF) or a control character."""
    if _BAD_HEADER(name) or _BAD_HEADER(value) or ":" in name or not name:
        raise ValueError(f"header {name!r} holds a line break or a control character")


def _verified_context() -> ssl.SSLContext:
    """aiohttp's verified context when it has one (made at its import: loading
    the CA store again costs ~40 ms), else a default one of our own."""
    ctx = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
    if isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED:
        return ctx
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


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
        self.port = url.port or (443 if self.tls else 80)
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
                 max_line_size: int = 16384) -> None:
        self._headers = CIMultiDict(headers)
        for k, v in self._headers.items():
            check_header(k, v)
        self._connect_timeout = connect_timeout
        self._jar = cookie_jar
        self._cookies = not isinstance(cookie_jar, aiohttp.DummyCookieJar)
        self._keepalive = keepalive
        self._max_line_size = max_line_size
        self._origins: dict[str, _Origin] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[aiohappyeyeballs.AddrInfoType]]] = {}
        # Lookups under way: the requests that open a host's first connections
        # together wait for one answer (as aiohttp's connector does).
        self._resolving: dict[tuple[str, int],
                              asyncio.Future[list[aiohappyeyeballs.AddrInfoType]]] = {}
        self._ssl: ssl.SSLContext | None = None
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
        if _BAD_HEADER(target) or " " in target:
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
                self._ssl = _verified_context()
            tls = self._ssl
        where = f"{origin.host}:{origin.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                sock = await aiohappyeyeballs.start_connection(
                    await self._addresses(origin.host, origin.port),
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1)
                _, proto = await loop.create_connection(
                    lambda: ResponseHandler(loop), sock=sock, ssl=tls,
                    server_hostname=origin.host if tls else None)
        except TimeoutError:
            raise aiohttp.ConnectionTimeoutError(
                f"no connection to {where} within {self._connect_timeout:g} s") from None
        except socket.gaierror as e:
            raise aiohttp.ClientOSError(e.errno, f"cannot resolve {origin.host}: "
                                        f"{e.strerror or e}") from None
        except OSError as e:
            raise aiohttp.ClientOSError(e.errno, f"cannot connect to {where}: {e}") from None
        # One parser for the connection's life: it reads one response after
        # another (aiohttp makes one per request).
        proto.set_response_params(read_until_eof=True, max_line_size=self._max_line_size)
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
