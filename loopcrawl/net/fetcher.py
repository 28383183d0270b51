"""The downloader: aiohttp's session and a keep-alive pool, timeouts, a size
cap, redirects.

GETs go over ``wire.Pool`` (aiohttp's protocol and parser, without the
session's per-request layers) unless ``Pool.takes`` says otherwise (a body,
per-request cookies, an "@" or "#" or non-ASCII character in the URL);
those, other methods, and everything when a proxy is set or with
``http_pool=False`` go through ``aiohttp.ClientSession``. Both share one cookie jar and
send the same headers, and both answer with what ``_fetch`` reads of a
response, so everything below the request line is one code path.

Redirects are followed here, hop by hop, so each hop can be checked like a
link (scope, robots.txt, seen) before it is requested. Errors from aiohttp
are turned into ``FetchError`` with a stable ``kind`` where they enter.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .. import errors
from ..errors import FetchError, RedirectError, TooLarge
from ..settings import Settings
from ..urls import canonicalize, host_of
from . import _aiohttp, failures, wire
from .fetched import Fetched, Hop, RedirectCheck, TurnWait
from .watchdog import Watch, Watchdog
from .wire import Exchange, Pool

__all__ = ["Fetched", "Fetcher", "Hop", "RedirectCheck", "TurnWait"]


_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_ACCEPT_ENCODING = _aiohttp.accept_encoding()
_log = logging.getLogger("loopcrawl.net")
_KEEPALIVE = 30.0  # seconds an idle connection is kept for reuse, on both paths


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Fetcher:
    """Fetches URLs over one keep-alive pool and one ``aiohttp.ClientSession``
    (which requests take which: the module's docstring)."""

    def __init__(self, settings: Settings, *,
                 cookie_jar: aiohttp.abc.AbstractCookieJar | None = None) -> None:
        self.settings = settings
        self._jar = cookie_jar  # a worker process's (workers/cookies.py); None: our own
        self._session: aiohttp.ClientSession | None = None
        self._pool: Pool | None = None
        self._abandoned: Pool | None = None  # a pool that failed mid-crawl
        self._watchdog = Watchdog(settings.timeout, settings.read_timeout)

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        tls = tls_context(s)
        connector = aiohttp.TCPConnector(
            limit=0,  # the scheduler bounds concurrency, globally and per host
            limit_per_host=0,
            ttl_dns_cache=int(wire.DNS_TTL),  # the pool's lookups are kept as long
            keepalive_timeout=_KEEPALIVE,
            ssl=True if tls is None else tls,
        )
        self._credentials = {k: v for k, v in s.headers.items() if k.lower() in _CREDENTIALS}
        # Credential headers (-H "Authorization: ...") are not session
        # defaults: they go per request, so a redirect to another host drops them.
        # A -H header replaces ours whatever the case of its name (a plain
        # dict would send "user-agent" and "User-Agent" both: a 400 from strict
        # servers).
        defaults = CIMultiDict({"User-Agent": s.user_agent, "Accept": _ACCEPT})
        defaults.update(_drop(s.headers, _CREDENTIALS) or {})
        jar = (aiohttp.DummyCookieJar() if not s.cookies else aiohttp.CookieJar(unsafe=True)
               if self._jar is None else self._jar)  # unsafe: IP-address hosts too
        self._session = aiohttp.ClientSession(
            connector=connector,
            # The total and read timeouts are the watchdog's (see watchdog.py).
            # connect: DNS, the TCP connect and TLS, as the pool counts it.
            timeout=aiohttp.ClientTimeout(total=None, connect=s.connect_timeout,
                                          sock_connect=s.connect_timeout),
            headers=defaults,
            cookie_jar=jar,
            auto_decompress=True,
            skip_auto_headers=(),
            **wire.HEADER_LIMITS,  # the pool's, which its Pool takes by default
        )
        if s.http_pool and s.proxy is None and await wire.self_test():
            pooled = CIMultiDict({"Accept-Encoding": _ACCEPT_ENCODING})
            pooled.update(defaults)  # a -H Accept-Encoding as the session sends it
            self._pool = Pool(pooled,
                              connect_timeout=s.connect_timeout, cookie_jar=jar,
                              keepalive=_KEEPALIVE, tls=tls)
            self._watchdog.sweep = self._pool.sweep
        self._watchdog.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._watchdog.stop()
        for pool in (self._pool, self._abandoned):
            if pool is not None:
                await pool.close()
        self._pool = self._abandoned = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        *,
        check_redirect: RedirectCheck | None = None,
        max_size: int | None = None,
        truncate: bool = False,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        cookies: Mapping[str, str] | None = None,
        wait_turn: TurnWait | None = None,
    ) -> Fetched:
        """Request ``url``, following redirects; raise ``FetchError`` on failure.

        ``headers`` and ``cookies`` are added to the session's for this request
        only. Redirects change the method as browsers do: 303 (and 301/302 after
        a POST) continue as a GET without the body; 307/308 keep both. Headers
        that carry credentials (Authorization, Cookie) and per-request cookies
        are not sent on to another origin.

        The whole exchange must end within ``settings.timeout`` and the
        server may not stay silent for ``settings.read_timeout`` (counted from
        the start, then from its last byte). A body above ``max_size`` fails
        with ``TooLarge``, or with ``truncate`` is cut there (robots.txt:
        rules past 500 KiB are ignored). Each redirect hop first awaits
        ``wait_turn`` (the host's delay), a wait the timeouts do not count.
        """
        watch = self._watchdog.watch()
        try:
            fetched = await self._fetch(url, check_redirect, max_size, truncate,
                                        method, headers, body, cookies, watch, wait_turn)
        except BaseException as e:
            # The watchdog's cancel, whatever it became on its way up (and only
            # it: a cancel of the crawl's own goes on as it is).
            if watch.expired is not None and watch.task.uncancel() <= watch.cancelling:
                raise FetchError(f"no complete answer within the timeout ({watch.expired})",
                                 errors.TIMEOUT) from None
            if isinstance(e, FetchError | asyncio.CancelledError):
                raise
            if (err := failures.fetch_error(e)) is not None:
                raise err from None
            if not _from_pool(e):
                raise
            # The pool failed in a way no mapping foresaw (an aiohttp that
            # changed under it): the session serves the rest of the crawl,
            # starting with this request.
            self._abandon_pool(e)
            self._watchdog.done(watch)
            return await self.fetch(url, check_redirect=check_redirect, max_size=max_size,
                                    truncate=truncate, method=method, headers=headers,
                                    body=body, cookies=cookies, wait_turn=wait_turn)
        finally:
            self._watchdog.done(watch)
        if watch.expired is not None:  # the cancel came too late to stop it: undo its count
            watch.task.uncancel()
        return fetched

    def _abandon_pool(self, e: BaseException) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Its idle connections still close after the keep-alive time (the
            # watchdog's sweep), the rest at the end.
            self._abandoned = pool
            _log.warning("the keep-alive pool failed (%s: %s); the rest of the crawl "
                         "takes aiohttp's session", type(e).__name__, e)

    async def _fetch(
        self, url: str, check_redirect: RedirectCheck | None, max_size: int | None,
        truncate: bool, method: str, headers: Mapping[str, str] | None,
        body: bytes | None, cookies: Mapping[str, str] | None, watch: Watch,
        wait_turn: TurnWait | None = None,
    ) -> Fetched:
        session = self._session
        assert session is not None, "Fetcher used outside 'async with'"
        if self._credentials and not headers:
            headers = self._credentials
        elif self._credentials:  # the request's own replace them, whatever the case
            merged = CIMultiDict(self._credentials)
            merged.update(headers)
            headers = merged
        cap = max_size or self.settings.max_response_size
        proxy = self.settings.proxy
        pool = self._pool
        visited = {url}
        hops = 0
        while True:
            if hops and wait_turn is not None:
                await _paused(watch, wait_turn(url))
            resp: Exchange | aiohttp.ClientResponse
            if pool is not None and pool.takes(method, url, cookies, body):
                resp = await pool.request(url, headers)
            else:
                resp = await session.request(
                    method, URL(url, encoded=True), headers=headers, data=body or None,
                    cookies=cookies, proxy=proxy, allow_redirects=False)
            async with resp:
                watch.reading(resp.content)
                status = resp.status
                if status in _REDIRECTS and "Location" in resp.headers:
                    target = canonicalize(_location(resp.headers["Location"]), url)
                    if target is None:
                        raise RedirectError(
                            f"redirect to a non-http(s) or invalid URL: "
                            f"{resp.headers['Location'][:200]!r}",
                            errors.REDIRECT_REFUSED,
                        )
                    nxt = None
                    if method != "GET":
                        nxt = _redirected_method(status, method, body, headers)
                        if nxt[0] != method:  # a new request: POST /a, then GET /a, is no loop
                            visited = set()
                    if target in visited:
                        raise RedirectError(f"redirect loop back to {target}", errors.REDIRECT_LOOP)
                    if hops >= self.settings.max_redirects:
                        raise RedirectError(
                            f"more than {self.settings.max_redirects} redirects",
                            errors.TOO_MANY_REDIRECTS,
                        )
                    verdict = await check_redirect(target) if check_redirect else Hop.FOLLOW
                    if verdict is Hop.FOLLOW:
                        visited.add(target)
                        hops += 1
                        if nxt is not None:
                            method, body, headers = nxt
                        if (headers or cookies) and host_of(target) != host_of(url):
                            cookies = None
                            headers = _drop(headers, _CREDENTIALS)
                        url = target
                        continue
                    if verdict is not Hop.STOP:
                        raise RedirectError(f"redirect to {target} refused ({verdict})", verdict)
                    # The target is crawled elsewhere: record the 3xx itself.
                try:
                    content = await _read_capped(resp, cap, truncate)
                except aiohttp.ClientPayloadError as e:
                    if 200 <= status < 300 or failures.undecodable(e) is None:
                        raise
                    content = b""  # an error's or a redirect's page: its status is the answer
                ctype = resp.headers.get("Content-Type", "")
                mime, _, params = ctype.partition(";")
                charset = None
                if "charset=" in params.lower():
                    charset = params.lower().split("charset=", 1)[1].split(";")[0].strip(' "\'')
                return Fetched(
                    url=url,
                    status=status,
                    content_type=mime.strip().lower(),
                    charset=charset or None,
                    body=content,
                    redirects=hops,
                    retry_after=parse_retry_after(resp.headers.get("Retry-After"))
                    if status in (429, 503)
                    else None,
                    headers=resp.headers,
                    request_headers=resp.request_info.headers,
                    method=method,
                    request_body=body,
                )


def _location(value: str) -> str:
    """A Location header as browsers read its bytes. aiohttp decodes a header
    as UTF-8, and bytes that are not UTF-8 (an old server's Latin-1 path,
    ``/na\\xefve``) as lone surrogates, which no URL holds: those go back to
    the bytes they were, percent-encoded (``/na%EFve``)."""
    if value.isascii():
        return value
    return "".join(f"%{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else c
                   for c in value)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of a crawl's pool and session alike; None for the
    default (the system's CA store, as aiohttp verifies)."""
    if not settings.verify_tls:
        _log.warning("TLS certificates are not verified (--insecure): any server can "
                     "pose as the sites crawled")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif settings.ca_bundle is not None:
        ctx = ssl.create_default_context(cafile=settings.ca_bundle)
    else:
        return None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def _paused(watch: Watch, wait: Awaitable[None]) -> None:
    """Await ``wait`` with ``watch``'s timeouts stopped (a politeness wait is
    not the server's slowness), then move them on by the time it took."""
    deadline, idle, t0 = watch.deadline, watch.idle_until, time.monotonic()
    watch.deadline = watch.idle_until = math.inf
    # The last hop's body is read: were it still watched, the watchdog would
    # take its bytes for progress and re-arm the read timeout during the wait.
    watch.stream = None
    try:
        await wait
    finally:
        waited = time.monotonic() - t0
        watch.deadline, watch.idle_until = deadline + waited, idle + waited


def _from_pool(e: BaseException) -> bool:
    """Whether ``e`` was raised in the pool's code (or in aiohttp's called from it)."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in _POOL_FILES:
            return True
        tb = tb.tb_next
    return False


_POOL_FILES = frozenset((wire.__file__, _aiohttp.__file__))


# Headers that carry credentials: never sent on to another host after a redirect.
_CREDENTIALS = frozenset(("authorization", "proxy-authorization", "cookie"))
_BODY_HEADERS = frozenset(("content-type", "content-length", "content-encoding"))


def _drop(headers: Mapping[str, str] | None, names: frozenset[str]) -> dict[str, str] | None:
    if not headers:
        return None
    return {k: v for k, v in headers.items() if k.lower() not in names}


def _redirected_method(
    status: int, method: str, body: bytes | None, headers: Mapping[str, str] | None,
) -> tuple[str, bytes | None, Mapping[str, str] | None]:
    """The method, body and headers of the next hop (RFC 9110 §15.4, as browsers
    behave): 303 becomes a GET (HEAD stays HEAD), 301/302 turn a POST into a
    GET, 307/308 repeat the request as it was."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", None, _drop(headers, _BODY_HEADERS)
    return method, body, headers


async def _read_capped(resp: Exchange | aiohttp.ClientResponse, cap: int,
                       truncate: bool = False) -> bytes:
    """The body, decompressed, refusing more than ``cap`` bytes while streaming.

    aiohttp inflates gzip/deflate/br/zstd in bounded steps as we read, so a
    decompression bomb is stopped here at ``cap`` with flat memory.
    """
    length = resp.content_length
    if length is not None and "Content-Encoding" not in resp.headers and length <= cap:
        return await resp.read()
    if length is not None and length > cap and not truncate and (
        "Content-Encoding" not in resp.headers
    ):
        raise TooLarge(f"Content-Length {length} is above the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    content = resp.content
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - cap)])
                break
            raise TooLarge(f"body above the {cap}-byte cap (decompressed)")
        chunks.append(chunk)
    return b"".join(chunks)
