"""Keep-alive HTTP/1.1 connections for the crawl's GETs, on aiohttp's protocol.

``aiohttp.ClientSession.request`` runs ~420,000 instructions a request on
this machine, ~260 Python calls: URL and header merging, a ``ClientRequest``
and ``ClientResponse`` with their properties, the connector's bookkeeping,
traces and timers. A crawler's GET needs little of that. Here a request is
one ``transport.write`` of a header block built mostly once per origin, and
the response is read by aiohttp's own ``ResponseHandler`` and C parser (the
same header limits, chunked and close-delimited bodies, decompression in
bounded steps, and error types as the session) from a pool of idle
connections per origin: ~170,000 instructions a request.

Only what this path does the same as the session takes it (see
``Pool.takes``): GETs of ASCII URLs without per-request cookies, with no
proxy. The session's cookie jar is shared, so cookies a site sets are sent
back on either path. A connection found closed when reused is replaced once,
as aiohttp does for idempotent requests.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Mapping
from types import TracebackType

import aiohttp
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

__all__ = ["Exchange", "Pool"]

DNS_TTL = 300.0  # seconds an address lookup is kept (aiohttp's default too)
_BAD_HEADER = re.compile(r"[\r\n\0]").search  # header injection: refused
_RETRY_ON_REUSE = (aiohttp.ServerDisconnectedError, ConnectionResetError, BrokenPipeError)


class _Sent:
    """What was sent: ``Exchange.request_info.headers``, as on aiohttp's response."""

    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


class _Origin:
    """One ``scheme://host[:port]``: where to connect, its header block, idle connections."""

    __slots__ = ("host", "idle", "port", "prefix", "sent", "tls")

    def __init__(self, origin: str, headers: CIMultiDict[str]) -> None:
        scheme, _, hostport = origin.partition("://")
        self.tls = scheme == "https"
        url = URL(origin, encoded=True)
        self.host = url.raw_host or ""  # IPv6 without its brackets
        self.port = url.port or (443 if self.tls else 80)
        # Host first, as aiohttp sends it (the default port is gone: canonical).
        self.sent = CIMultiDictProxy(CIMultiDict([("Host", hostport), *headers.items()]))
        self.prefix = "".join(f"{k}: {v}\r\n" for k, v in self.sent.items())
        # None once the pool has let go of this origin: connections coming
        # back to it are closed.
        self.idle: list[tuple[ResponseHandler, float]] | None = []


class Exchange:
    """One response on a pooled connection: the part of ``aiohttp.ClientResponse``
    the fetcher reads (status, headers, ``content``, ``read``), as an async
    context manager that gives the connection back when the body was read."""

    __slots__ = ("_origin", "_pool", "_proto", "content", "content_length", "headers",
                 "request_info", "status")

    def __init__(self, pool: Pool, origin: _Origin, proto: ResponseHandler,
                 message: aiohttp.http.RawResponseMessage, payload: aiohttp.StreamReader,
                 sent: Mapping[str, str]) -> None:
        self._pool = pool
        self._origin = origin
        self._proto: ResponseHandler | None = proto
        self.status: int = message.code
        self.headers: CIMultiDictProxy[str] = message.headers
        self.content = payload
        length = self.headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self.request_info = _Sent(sent)

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
            if _BAD_HEADER(k) or _BAD_HEADER(v):
                raise ValueError(f"header {k!r} holds a line break or NUL")
        self._connect_timeout = connect_timeout
        self._jar = cookie_jar
        self._cookies = not isinstance(cookie_jar, aiohttp.DummyCookieJar)
        self._keepalive = keepalive
        self._max_line_size = max_line_size
        self._origins: dict[str, _Origin] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._swept = time.monotonic()

    @staticmethod
    def takes(method: str, url: str, cookies: object) -> bool:
        """Whether this path serves a request (the session serves the rest)."""
        return method == "GET" and cookies is None and url.isascii() and "#" not in url

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
        if headers:
            merged = CIMultiDict(sent)
            for k, v in headers.items():
                if _BAD_HEADER(k) or _BAD_HEADER(v):
                    raise ValueError(f"header {k!r} holds a line break or NUL")
                merged[k] = v
            sent = CIMultiDictProxy(merged)
            head = "".join(f"{k}: {v}\r\n" for k, v in merged.items())
        if self._cookies and len(self._jar):
            jar = self._jar.filter_cookies(URL(url, encoded=True))
            if jar:
                cookie = "; ".join(f"{m.key}={m.coded_value}" for m in jar.values())
                merged = CIMultiDict(sent)
                merged["Cookie"] = cookie
                sent = CIMultiDictProxy(merged)
                head += f"Cookie: {cookie}\r\n"
        data = f"GET {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1")
        while True:
            proto = self._idle(origin) if origin.idle else None
            reused = proto is not None
            if proto is None:
                proto = await self._connect(origin)
            try:
                message, payload = await self._exchange(proto, data)
            except _RETRY_ON_REUSE:
                proto.close()
                if reused:  # closed by the server while idle: once more, on a new one
                    continue
                raise
            except BaseException:
                proto.close()
                raise
            break
        if self._cookies and "Set-Cookie" in message.headers:
            self._jar.update_cookies_from_headers(message.headers.getall("Set-Cookie"),
                                                  URL(url, encoded=True))
        return Exchange(self, origin, proto, message, payload, sent)

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
            if since > stale and proto.is_connected():
                return proto
            proto.close()
        return None

    async def _connect(self, origin: _Origin) -> ResponseHandler:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        error: OSError | None = None
        async with asyncio.timeout(self._connect_timeout):
            for family, ip in await self._addresses(origin.host, origin.port):
                try:
                    _, proto = await loop.create_connection(
                        lambda: ResponseHandler(loop), ip, origin.port, family=family,
                        ssl=tls, server_hostname=origin.host if tls else None)
                    # One parser for the connection's life: it reads one
                    # response after another (aiohttp makes one per request).
                    proto.set_response_params(read_until_eof=True,
                                              max_line_size=self._max_line_size)
                    return proto
                except OSError as e:  # the next address, as a browser would
                    error = e
        raise aiohttp.ClientOSError(
            getattr(error, "errno", None),
            f"cannot connect to {origin.host}:{origin.port}: {error or 'no address'}")

    async def _addresses(self, host: str, port: int) -> list[tuple[int, str]]:
        now = time.monotonic()
        got = self._dns.get((host, port))
        if got is not None and got[0] > now:
            return got[1]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[tuple[int, str]] = list(dict.fromkeys((fam, str(sa[0])) for fam, _, _, _, sa in infos))
        if len(self._dns) > 4096:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_TTL, addresses)
        return addresses

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

    def close(self) -> None:
        for origin in self._origins.values():
            for proto, _ in origin.idle or ():
                proto.close()
            origin.idle = None
        self._origins.clear()
