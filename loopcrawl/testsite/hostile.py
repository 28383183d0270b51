"""The hostile corner of the test site: every way a server can hurt a crawler.

Served under ``/hostile/`` when the test site runs with ``--hostile``. Each
path is one misbehaviour; ``EXPECTED`` says what a correct crawler records
for it (an error kind, or a status), which is the ground truth the tests and
the hostile benchmark check against. Everything is bounded: endless bodies
stop when the client goes away, silent answers give up after ``HANG_S``.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["ENCODED_TITLES", "EXPECTED", "TRAPS", "handle", "index_html"]

HANG_S = 120.0  # the longest any response here keeps a connection waiting
_MB = 1024 * 1024

# What a correct crawl with default settings records for each path: an error
# kind, or the HTTP status of a page that must be fetched (and survive).
EXPECTED: dict[str, str | int] = {
    "/hostile/bomb/gzip": "too_large",
    "/hostile/bomb/deflate": "too_large",
    "/hostile/bomb/br": "too_large",
    "/hostile/bomb/zstd": "too_large",
    "/hostile/big.bin": "too_large",
    "/hostile/endless-binary": "too_large",
    "/hostile/endless": "too_large",
    "/hostile/image.png": 200,
    "/hostile/silent": "timeout",
    "/hostile/trickle": "timeout",
    "/hostile/short-body": "connection_error",
    "/hostile/reset": "connection_error",
    "/hostile/redirect/chain/0": "too_many_redirects",
    "/hostile/redirect/loop-a": "redirect_loop",
    "/hostile/redirect/file": "redirect_refused",
    "/hostile/redirect/data": "redirect_refused",
    "/hostile/redirect/javascript": "redirect_refused",
    "/hostile/flaky": 200,
    "/hostile/throttle": 200,
    "/hostile/throttle-date": 200,
    "/hostile/deep": 200,
    "/hostile/soup": 200,
    "/hostile/nul": 200,
    "/hostile/many-links": 200,
    "/hostile/huge-page": "too_large",
    "/hostile/enc/shift_jis": 200,
    "/hostile/enc/gbk-meta": 200,
    "/hostile/enc/cp1251-http-equiv": 200,
    "/hostile/enc/latin1": 200,
    "/hostile/enc/utf8-bom": 200,
    "/hostile/enc/invalid-utf8": 200,
    "/hostile/enc/undeclared-cp1251": 200,
    "/hostile/calendar?month=2024-01": 200,
    "/hostile/grow?q=a": 200,
    "/hostile/session": 200,
    "/hostile/a/": 200,
    "/hostile/long": 200,
}

# The trap entrances: each opens an endless URL space.
TRAPS = ("/hostile/calendar?month=2024-01", "/hostile/grow?q=a", "/hostile/session",
         "/hostile/a/", "/hostile/long")

_RU = "Привет, мир! Это страница в старой кодировке, и заголовок должен читаться верно."
ENCODED_TITLES: dict[str, str] = {
    "/hostile/enc/shift_jis": "こんにちは、世界",
    "/hostile/enc/gbk-meta": "你好，世界",
    "/hostile/enc/cp1251-http-equiv": "Привет, мир",
    "/hostile/enc/latin1": "Café à la crème",
    "/hostile/enc/utf8-bom": "Grüße aus Köln",
    "/hostile/enc/invalid-utf8": "broken \ufffd\ufffd bytes",
    "/hostile/enc/undeclared-cp1251": _RU,
}

# Per-path request counters, for the answers that change on retry.
_hits: Counter[str] = Counter()


def index_html() -> bytes:
    links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in EXPECTED)
    return (f"<!doctype html><html><head><title>Hostile corner</title></head>"
            f"<body><ul>{links}</ul></body></html>").encode()


def _html(title: str, body: str = "", *, charset: str = "utf-8", head: str = "") -> bytes:
    return (f"<!doctype html><html><head>{head}<title>{title}</title></head>"
            f"<body>{body}</body></html>").encode(charset)


def _page(body: bytes, ctype: str = "text/html; charset=utf-8", status: int = 200,
          headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status,
                        headers={"Content-Type": ctype, **(headers or {})})


async def _stream(request: web.BaseRequest, chunks: Callable[[], bytes], *,
                  headers: dict[str, str], limit: int = 4096 * _MB,
                  pause: float = 0.0) -> web.StreamResponse:
    """Send ``chunks()`` until ``limit`` bytes or the client leaves."""
    resp = web.StreamResponse(headers=headers)
    if "Content-Length" not in headers:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    sent = 0
    try:
        async with asyncio.timeout(HANG_S):
            while sent < limit:
                chunk = chunks()
                transport = request.transport
                if not chunk or transport is None or transport.is_closing():
                    break  # the client has gone: stop, rather than spin
                await resp.write(chunk)
                sent += len(chunk)
                if pause:
                    await asyncio.sleep(pause)
    except (ConnectionError, TimeoutError, RuntimeError):
        pass
    return resp


def _bomb_parts(encoding: str) -> tuple[bytes, bytes]:
    """(a first chunk, a chunk repeated forever) of a stream of compressed
    zeros: each 1 MiB of zeros costs ~1 KB on the wire. brotli has no
    concatenation, so its bomb is one 256 MiB body (~40 KB) and then the end."""
    zeros = bytes(_MB)
    if encoding in ("gzip", "deflate"):
        wbits = 31 if encoding == "gzip" else 15
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        head = c.compress(b"")
        # A full flush ends a byte-aligned block that leans on no history,
        # so the same compressed block can be repeated forever.
        block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
        return head, block * 64
    if encoding == "br":
        import brotli

        return brotli.compress(bytes(256 * _MB), quality=1), b""
    if encoding == "zstd":
        from backports.zstd import compress

        frame = compress(bytes(256 * _MB), 1)  # ~8 KB; frames may be concatenated
        return frame, frame
    raise ValueError(encoding)


_BOMBS: dict[str, tuple[bytes, bytes]] = {}


async def _bomb(request: web.BaseRequest, encoding: str) -> web.StreamResponse:
    if encoding not in _BOMBS:
        _BOMBS[encoding] = await asyncio.to_thread(_bomb_parts, encoding)
    head, block = _BOMBS[encoding]
    first = [head] if head else []

    def chunks() -> bytes:  # state per response: every request gets the whole bomb
        return first.pop() if first else block

    return await _stream(request, chunks, headers={
        "Content-Type": "text/html; charset=utf-8", "Content-Encoding": encoding})


async def _silent(request: web.BaseRequest) -> web.StreamResponse:
    await asyncio.sleep(HANG_S)
    return _page(b"too late")


async def _trickle(request: web.BaseRequest) -> web.StreamResponse:
    return await _stream(request, lambda: b" ", headers={"Content-Type": "text/html"},
                         pause=1.0, limit=int(HANG_S))


async def _short_body(request: web.BaseRequest) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Length": "10000"})
    await resp.prepare(request)
    await resp.write(b"<html><title>short</title>" + b" " * 74)
    assert request.transport is not None
    request.transport.close()
    return resp


async def _reset(request: web.BaseRequest) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Length": "100000"})
    await resp.prepare(request)
    await resp.write(b"<html><title>reset</title>" + b"x" * 5000)
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    if sock is not None:  # SO_LINGER 0: close() sends RST, not FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return resp


def _retry_answer(key: str, fail_times: int, fail: web.Response) -> web.Response:
    _hits[key] += 1
    if _hits[key] <= fail_times:
        return fail
    _hits[key] = 0  # the next crawl starts over
    return _page(_html(key))


def _throttle_date() -> web.Response:
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    return _retry_answer("throttle-date", 1,
                         _page(b"slow down", status=503, headers={"Retry-After": when}))


def _encoded(path: str) -> web.Response:
    title = ENCODED_TITLES[path]
    text = f"<p>{title}</p>" * 40
    if path.endswith("shift_jis"):
        return _page(_html(title, text, charset="shift_jis"), "text/html; charset=Shift_JIS")
    if path.endswith("gbk-meta"):
        return _page(_html(title, text, charset="gbk", head='<meta charset="gb2312">'),
                     "text/html")
    if path.endswith("cp1251-http-equiv"):
        head = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        return _page(_html(title, text, charset="cp1251", head=head), "text/html")
    if path.endswith("latin1"):
        return _page(_html(title, text, charset="latin-1"), "text/html; charset=ISO-8859-1")
    if path.endswith("utf8-bom"):
        return _page(b"\xef\xbb\xbf" + _html(title, text), "text/html")
    if path.endswith("invalid-utf8"):
        body = _html("broken \x00MARK bytes", text).replace(b"\x00MARK", b"\xff\xfe")
        return _page(body, "text/html; charset=utf-8")
    return _page(_html(title, text * 5, charset="cp1251"), "text/html")


def _calendar(month: str) -> web.Response:
    try:
        y, m = (int(x) for x in month.split("-"))
    except ValueError:
        return _page(_html("bad month"), status=404)
    nxt = f"{y + m // 12}-{m % 12 + 1:02d}"
    prv = f"{y - (m == 1)}-{(m - 2) % 12 + 1:02d}"
    return _page(_html(f"Calendar {month}", f'<a href="?month={nxt}">next</a>'
                                            f'<a href="?month={prv}">previous</a>'))


_ROUTES: dict[str, Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]] = {
    "/hostile/silent": _silent,
    "/hostile/trickle": _trickle,
    "/hostile/short-body": _short_body,
    "/hostile/reset": _reset,
}


async def handle(request: web.BaseRequest) -> web.StreamResponse:
    """Answer one ``/hostile/...`` request."""
    path = request.path
    q = request.query
    if path in ("/hostile", "/hostile/"):
        return _page(index_html())
    if path in _ROUTES:
        return await _ROUTES[path](request)
    if path.startswith("/hostile/bomb/"):
        return await _bomb(request, path.rsplit("/", 1)[1])
    if path == "/hostile/big.bin":
        return await _stream(request, lambda: bytes(64 * 1024), limit=50 * _MB, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(50 * _MB)})
    if path == "/hostile/endless-binary":
        return await _stream(request, lambda: bytes(64 * 1024),
                             headers={"Content-Type": "image/jpeg"})
    if path == "/hostile/endless":
        return await _stream(request, lambda: b"<p>more</p>" * 4096,
                             headers={"Content-Type": "text/html"})
    if path == "/hostile/image.png":
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000 + b'<a href="/hostile/never">'
        return _page(png, "image/png")
    if path.startswith("/hostile/redirect/"):
        return _redirect(path.removeprefix("/hostile/redirect/"), request)
    if path == "/hostile/flaky":
        return _retry_answer("flaky", 2, _page(b"down", status=503))
    if path == "/hostile/throttle":
        return _retry_answer("throttle", 1,
                             _page(b"slow down", status=429, headers={"Retry-After": "1"}))
    if path == "/hostile/throttle-date":
        return _throttle_date()
    if path == "/hostile/deep":
        return _page(_html("Deep", "<div>" * 100_000 + '<a href="/hostile/deep-end">end</a>'))
    if path == "/hostile/soup":
        soup = "<a href=x href=y <<>>\"'' class=\0\0 href='/hostile/soup2'>" * 2000
        return _page(_html("Soup", soup + "<a href='/hostile/soup-end'>"))
    if path == "/hostile/nul":
        return _page(_html("Nul", '<a href="/hostile/nul-\0end">x</a>\0\0\0<p>\0</p>'))
    if path == "/hostile/many-links":
        links = "".join(f'<a href="/hostile/leaf/{i}">{i}</a>' for i in range(100_000))
        return _page(_html("Many links", links))
    if path == "/hostile/huge-page":
        return await _stream(request, lambda: b"<p>" + b"x" * 65530 + b"</p>",
                             limit=20 * _MB, headers={"Content-Type": "text/html"})
    if path.startswith(("/hostile/leaf/", "/hostile/sm/")):
        return _page(_html("Leaf"))
    if path.startswith("/hostile/enc/") and path in ENCODED_TITLES:
        return _encoded(path)
    if path == "/hostile/calendar":
        return _calendar(q.get("month", ""))
    if path == "/hostile/grow":
        v = q.get("q", "a")
        return _page(_html("Grow", f'<a href="?q={v}{v[-1]}">more</a>'
                                   f'<a href="?q={v}b">other</a>'))
    if path in ("/hostile/session", "/hostile/page"):
        sid = int(q.get("sid", "0")) + 1
        return _page(_html("Session", f'<a href="/hostile/session?sid={sid}">next</a>'
                                      f'<a href="/hostile/page?sid={sid}">page</a>'))
    if path.startswith("/hostile/a/") and set(path.removeprefix("/hostile/").split("/")) <= {
        "a", ""
    }:
        return _page(_html("A", '<a href="a/">deeper</a>'))
    if path == "/hostile/long":
        return _page(_html("Long", f'<a href="/hostile/long?{"x" * 5000}">long</a>'))
    if path.startswith("/hostile/sitemap"):
        return _sitemap(path, request)
    if path in ("/hostile/echo", "/hostile/deep-end", "/hostile/soup-end"):
        return _page(_html(path))
    return _page(_html("Not found"), status=404)


def _redirect(what: str, request: web.BaseRequest) -> web.Response:
    def to(location: str, status: int = 302) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    if what.startswith("chain/"):
        n = int(what.removeprefix("chain/") or 0)
        return to(f"/hostile/redirect/chain/{n + 1}", 301)
    targets = {
        "loop-a": "/hostile/redirect/loop-b",
        "loop-b": "/hostile/redirect/loop-a",
        "file": "file:///etc/passwd",
        "data": "data:text/html,<a href=http://evil/>x</a>",
        "javascript": "javascript:alert(1)",
    }
    if what in targets:
        return to(targets[what])
    if what == "other-host":  # to the second loopback listener, same port
        port = request.url.port
        resp = to(f"http://127.0.0.2:{port}/hostile/echo")
        resp.set_cookie("session", "secret-cookie")
        return resp
    return _page(_html("Not found"), status=404)


_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>http://HOST/hostile/sm/&xxe;</loc></url>
<url><loc>http://HOST/hostile/sm/xxe-ok</loc></url></urlset>"""


def _laughs() -> bytes:
    ents = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY l0 "lol">{ents}]>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>http://HOST/hostile/sm/&l9;</loc></url>"
            "<url><loc>http://HOST/hostile/sm/laughs-ok</loc></url></urlset>").encode()


def _sitemap(path: str, request: web.BaseRequest) -> web.Response:
    host = request.host.encode()
    xml = "application/xml"
    if path == "/hostile/sitemap-index.xml":
        body = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                b'sitemap/0.9"><sitemap><loc>http://HOST/hostile/sitemap-xxe.xml</loc></sitemap>'
                b"<sitemap><loc>http://HOST/hostile/sitemap-laughs.xml</loc></sitemap>"
                b"<sitemap><loc>http://HOST/hostile/sitemap-pages.xml.gz</loc></sitemap>"
                b"</sitemapindex>")
        return _page(body.replace(b"HOST", host), xml)
    if path == "/hostile/sitemap-xxe.xml":
        return _page(_XXE.replace(b"HOST", host), xml)
    if path == "/hostile/sitemap-laughs.xml":
        return _page(_laughs().replace(b"HOST", host), xml)
    if path == "/hostile/sitemap-pages.xml.gz":
        urls = "".join(f"<url><loc>http://HOST/hostile/sm/p{i}</loc></url>" for i in range(20))
        body = ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9">{urls}</urlset>').encode().replace(b"HOST", host)
        return _page(gzip.compress(body), "application/x-gzip")
    return _page(_html("Not found"), status=404)
