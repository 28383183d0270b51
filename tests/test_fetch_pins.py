"""The fetcher's promises that make mutate found unpinned (docs/testing.md):
a redirect hop's politeness wait is not the server's slowness, and what a
failed fetch's message says."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import random
import time
from collections.abc import Callable

import pytest
from aiohttp import web

from loopcrawl import errors
from loopcrawl.errors import ErrorKind, FetchError, TooLarge
from loopcrawl.net.fetcher import Fetched, Fetcher, parse_retry_after
from loopcrawl.settings import Settings
from loopcrawl.testsite import ServerThread, hostile

from .conftest import PageServer
from .helpers import run

# Each request must end within 1 s in all (0.8 s without a byte), and a
# host's requests start 1.5 s apart: a hop's wait for its turn is longer than
# either timeout.
TIGHT = {"timeout": 1.0, "read_timeout": 0.8, "connect_timeout": 0.5, "delay": 1.5,
         "retries": 0, "depth": 0, "obey_robots": False}


def test_a_redirect_hops_wait_for_its_turn_is_not_counted_by_the_timeouts(
    pages: PageServer,
) -> None:
    """The hop has its whole timeouts after the wait: /b, 0.4 s slow, is in time."""
    pages.add("/", status=302, headers={"Location": "/b"})
    pages.add("/b", title="b", delay=0.4)
    recs, _ = run(pages.url + "/", **TIGHT)
    assert [(r.status, r.error, r.redirects) for r in recs] == [(200, None, 1)], recs
    first, hop = pages.log
    assert hop.path == "/b"
    # The hop did wait its turn: 1.5 s from the crawler's start of the first
    # request, less what a loaded machine lets pass before the server sees it.
    assert hop.start - first.start >= 1.0


def test_the_timeouts_still_run_after_a_redirect_hops_wait(pages: PageServer) -> None:
    """After the wait, the hop has its whole timeout again, and no more: a
    server that answers 3 s late is cut at the timeout."""
    pages.add("/", status=302, headers={"Location": "/slow"})
    pages.add("/slow", title="slow", delay=3.0)
    t0 = time.monotonic()
    recs, _ = run(pages.url + "/", **TIGHT)
    took = time.monotonic() - t0
    assert [r.error for r in recs] == ["timeout"], recs
    assert took < 1.5 + 1.0 + 1.0  # the turn, the timeout, slack; the server answers at 4.5 s


def test_a_broken_answer_names_what_broke() -> None:
    """A connection error's message starts with the exception's name (a user
    greps for it), on both request paths."""
    with PageServer(handler=hostile.handle) as evil:
        for pool in (True, False):
            for path in ("/hostile/short-body", "/hostile/reset"):
                recs, _ = run(evil.url + path, obey_robots=False, retries=0, depth=0,
                              http_pool=pool)
                (rec,) = recs
                assert rec.error == "connection_error", rec
                assert (rec.message or "").startswith("ClientPayloadError: "), rec.message


def test_a_303_keeps_head_and_turns_the_rest_into_a_get_with_their_headers(
    shop: ServerThread,
) -> None:
    """RFC 9110 as browsers do it: a HEAD stays a HEAD after a 303; a POST
    goes on as a GET without its body and body headers, with its other headers."""
    b = shop.base_url + "/shop/"

    async def go() -> tuple[Fetched, Fetched]:
        async with Fetcher(Settings()) as f:
            head = await f.fetch(b + "redirect/303", method="HEAD")
            post = await f.fetch(b + "redirect/303", method="POST", body=b"n=1",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-Mine": "1"})
        return head, post

    head, post = asyncio.run(go())
    assert (head.method, head.status, head.redirects, head.body) == ("HEAD", 200, 1, b"")
    assert (post.method, post.status, post.redirects) == ("GET", 200, 1)
    echo = json.loads(post.body)
    assert (echo["method"], echo["body"]) == ("GET", "")
    assert echo["headers"]["X-Mine"] == "1" and "Content-Type" not in echo["headers"]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_compressed_body_is_read_whole_and_capped_on_its_inflated_size(
    pages: PageServer, http_pool: bool,
) -> None:
    """The cap counts inflated bytes even when a Content-Length (of the
    compressed body) is sent: at ``cap`` the body is read whole, byte for byte,
    over many chunks; a small gzip that inflates past the cap is refused."""
    raw = random.Random(0).randbytes(300_000)  # incompressible: gzip makes it longer
    packed = gzip.compress(raw)
    pages.add("/packed", body=packed, content_type="application/octet-stream",
              headers={"Content-Encoding": "gzip"})
    bomb = gzip.compress(b"\0" * 5_000_000)
    pages.add("/bomb", body=bomb, content_type="application/octet-stream",
              headers={"Content-Encoding": "gzip"})

    async def go() -> tuple[Fetched, BaseException | None]:
        async with Fetcher(Settings(http_pool=http_pool)) as f:
            whole = await f.fetch(pages.url + "/packed", max_size=len(packed))
            try:
                await f.fetch(pages.url + "/bomb", max_size=1_000_000)
            except TooLarge as e:
                return whole, e
        return whole, None

    whole, refused = asyncio.run(go())
    assert whole.status == 200 and whole.body == raw
    assert whole.headers is not None and whole.headers["Content-Length"] == str(len(packed))
    assert isinstance(refused, TooLarge) and "decompressed" in str(refused)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    when = "Wed, 21 Oct 2026 07:28:00 GMT"
    at = email.utils.parsedate_to_datetime(when).timestamp()
    assert parse_retry_after(when, now=at - 2.5) == 2.5  # counted from ``now``
    assert parse_retry_after(when, now=at + 10) == 0.0  # a date past is no wait
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("") is None and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None and parse_retry_after("-3") is None


def test_the_session_path_is_bounded_by_the_crawl_not_by_aiohttps_connector(
    pages: PageServer,
) -> None:
    """aiohttp's connector would hold a session at 100 connections: a crawl
    allowed 120 at once (with ``http_pool=False``, as under a proxy) has its
    120 pages in flight together."""
    links = [f"/p{i}" for i in range(120)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=1.0)
    recs, _ = run(pages.url + "/", concurrency=120, per_host=120, obey_robots=False,
                  http_pool=False, timeout=30.0)
    assert len(recs) == 121 and all(r.status == 200 for r in recs)
    assert pages.peak == 120


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_port_0_is_not_port_80(http_pool: bool) -> None:
    """``http://host:0/`` names no server: both paths refuse it, neither
    asks the default port instead."""
    recs, _ = run("http://127.0.0.1:0/", obey_robots=False, retries=0, http_pool=http_pool)
    (rec,) = recs
    assert rec.error == "connection_refused", rec
    assert "127.0.0.1:0" in (rec.message or "") and "127.0.0.1:80" not in (rec.message or "")


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_given_cookie_jar_is_the_one_the_fetcher_uses(pages: PageServer, http_pool: bool) -> None:
    """A worker process hands the fetcher the crawl's shared jar: the cookies
    it already holds are sent, and what the server sets lands in it."""
    import aiohttp

    pages.add("/set", headers={"Set-Cookie": "b=2"})

    async def go() -> list[tuple[str, str]]:
        jar = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies({"a": "1"}, aiohttp.client.URL(pages.url + "/"))
        async with Fetcher(Settings(http_pool=http_pool), cookie_jar=jar) as f:
            await f.fetch(pages.url + "/set")
        return sorted((c.key, c.value) for c in jar)

    assert asyncio.run(go()) == [("a", "1"), ("b", "2")]
    assert pages.log[-1].headers.get("Cookie") == "a=1"


def test_a_fetcher_closed_twice_lets_go_once(pages: PageServer) -> None:
    """Closing is idempotent (as aiohttp's session is): the second close finds
    nothing left to close and does not fail."""
    pages.add("/")

    async def go() -> int:
        f = Fetcher(Settings())
        await f.__aenter__()
        status = (await f.fetch(pages.url + "/")).status
        await f.__aexit__(None, None, None)
        await f.__aexit__(None, None, None)
        return status

    assert asyncio.run(go()) == 200


def test_a_proxy_is_sent_every_request_and_the_pool_none(pool_calls: list[str]) -> None:
    """With ``proxy`` set every request (robots.txt, pages) goes to the proxy
    in absolute form, never around it: the site's name resolves nowhere, so
    only the proxy can have answered. The keep-alive pool (which speaks to
    origins only) is not used."""
    from aiohttp import web

    asked: list[tuple[str, str]] = []

    async def proxy(request: web.BaseRequest) -> web.StreamResponse:
        asked.append((request.method, request.raw_path))
        if request.raw_path.endswith("/robots.txt"):
            return web.Response(status=404)
        links = '<a href="/b?x=1">b</a>' if request.raw_path.endswith("/a") else ""
        return web.Response(text=f"<title>via proxy</title>{links}", content_type="text/html")

    with PageServer(handler=proxy) as srv:
        recs, _ = run("http://site.invalid/a", proxy=srv.url, retries=0)
    assert [(r.url, r.status, r.title) for r in recs] == [
        ("http://site.invalid/a", 200, "via proxy"), ("http://site.invalid/b?x=1", 200, "via proxy")]
    assert asked == [("GET", "http://site.invalid/robots.txt"), ("GET", "http://site.invalid/a"),
                     ("GET", "http://site.invalid/b?x=1")]
    assert pool_calls == []


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_what_a_fetch_returns_field_by_field(pages: PageServer, http_pool: bool) -> None:
    """Each field of ``Fetched`` from the last hop: the final URL, the
    redirects counted, the media type alone (lower-case, no blanks), the
    charset however it is written (quoted, any case, among other
    parameters, up to its ";"; none when empty), Retry-After on 429 and 503 only, a 3xx
    without Location kept as it is, and what was sent."""
    pages.add("/a", status=301, headers={"Location": "/b?q=1"})
    pages.add("/b?q=1", body=b"<p>b</p>", headers={"X-Server": "b"},
              content_type=" TEXT/HTML ;q=1; Charset=\"ISO-8859-1\" ; x=y")
    pages.add("/single", content_type="text/plain;charset='KOI8-R'")
    pages.add("/empty", content_type="text/html; charset=")
    pages.add("/none", content_type="text/html; format=charset")
    pages.add("/two", content_type="text/html; charset=koi8-r; charset=utf-8")  # the first
    # A value runs to the next ";" (a label no codec has, as browsers read it), not to "charset=".
    pages.add("/run", content_type="text/html; charset=koi8-r charset=utf-8")
    pages.add("/stay", status=302, body=b"no location")
    for status in (428, 429, 430, 502, 503, 504):
        pages.add(f"/s{status}", status=status, headers={"Retry-After": "7"})

    async def go() -> dict[str, Fetched]:
        async with Fetcher(Settings(http_pool=http_pool)) as f:
            return {p: await f.fetch(pages.url + p, headers={"X-Mine": "m"})
                    for p in ("/a", "/single", "/empty", "/none", "/two", "/run", "/stay",
                              *(f"/s{s}" for s in (428, 429, 430, 502, 503, 504)))}

    got = asyncio.run(go())
    b = got["/a"]
    assert (b.url, b.status, b.redirects, b.body) == (pages.url + "/b?q=1", 200, 1, b"<p>b</p>")
    assert (b.content_type, b.charset) == ("text/html", "iso-8859-1")
    assert b.headers is not None and b.headers["X-Server"] == "b"
    assert b.request_headers is not None and b.request_headers["X-Mine"] == "m"
    assert (b.method, b.request_body, b.retry_after) == ("GET", None, None)
    assert [h.path for h in pages.log[:2]] == ["/a", "/b?q=1"]
    assert all(h.headers["X-Mine"] == "m" for h in pages.log)
    assert [(got[p].content_type, got[p].charset)
            for p in ("/single", "/empty", "/none", "/two", "/run")] == [
        ("text/plain", "koi8-r"), ("text/html", None), ("text/html", None), ("text/html", "koi8-r"),
        ("text/html", "koi8-r charset=utf-8")]
    stay = got["/stay"]
    assert (stay.url, stay.status, stay.redirects, stay.body) == (
        pages.url + "/stay", 302, 0, b"no location")
    assert {s: got[f"/s{s}"].retry_after for s in (428, 429, 430, 502, 503, 504)} == {
        428: None, 429: 7.0, 430: None, 502: None, 503: 7.0, 504: None}


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
@pytest.mark.parametrize("case", [str.title, str.lower], ids=["Title", "lower"])
def test_a_header_given_in_any_case_replaces_the_default_once(
    http_pool: bool, case: Callable[[str], str],
) -> None:
    """``-H`` names a header in any case (HTTP's names are case-insensitive):
    it replaces the crawler's own (User-Agent, Accept, Accept-Encoding) on
    both paths, sent once with the user's value; a request's own header
    replaces a ``-H`` credential the same way. Sent twice, a strict server
    refuses the request (aiohttp's answers 400)."""
    from aiohttp import web

    names = ("User-Agent", "Accept", "Accept-Encoding", "Authorization", "X-Other")
    seen: list[dict[str, list[str]]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append({n: request.headers.getall(n, []) for n in names})
        return web.Response(text="<title>t</title>", content_type="text/html")

    given = {case(n): v for n, v in zip(names, ("me", "a/b", "identity", "Bearer t", "1"),
                                         strict=True)}
    with PageServer(handler=handle) as srv:

        async def go() -> list[int]:
            async with Fetcher(Settings(http_pool=http_pool, headers=given)) as f:
                return [(await f.fetch(srv.url + "/")).status,
                        (await f.fetch(srv.url + "/", headers={"Authorization": "Basic x"})).status]

        assert asyncio.run(go()) == [200, 200]
    assert seen == [
        {"User-Agent": ["me"], "Accept": ["a/b"], "Accept-Encoding": ["identity"],
         "Authorization": [a], "X-Other": ["1"]} for a in ("Bearer t", "Basic x")]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
@pytest.mark.parametrize("cookies", [True, False], ids=["cookies", "no-cookies"])
def test_cookies_are_kept_for_an_ip_address_host_unless_turned_off(
    pages: PageServer, http_pool: bool, cookies: bool,
) -> None:
    """The crawl's own jar keeps what a server at 127.0.0.1 sets (a browser's
    jar would not: IP-address hosts) and sends it on every later request,
    on both paths; with ``cookies=False`` nothing is kept or sent."""
    pages.add("/set", headers={"Set-Cookie": "s=1; Path=/"})
    pages.add("/next")

    async def go() -> None:
        async with Fetcher(Settings(http_pool=http_pool, cookies=cookies)) as f:
            for p in ("/set", "/next", "/next"):
                assert (await f.fetch(pages.url + p)).status == 200

    asyncio.run(go())
    assert [h.headers.get("Cookie") for h in pages.log] == (
        [None, "s=1", "s=1"] if cookies else [None, None, None])


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_status_lines_reason_is_read_up_to_16_kib(http_pool: bool) -> None:
    """The status line's limit is 16,384 bytes of reason phrase (aiohttp's
    default, 8,190, refuses answers some servers give): at the bound the
    page is read, one byte more is ``too_large`` naming the limit (not
    retried: the server sends the same line again)."""
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(reason="x" * int(request.raw_path[1:]), text="<title>t</title>",
                            content_type="text/html")

    with PageServer(handler=handle) as srv:

        async def go() -> list[object]:
            out: list[object] = []
            async with Fetcher(Settings(http_pool=http_pool)) as f:
                for n in (8191, 16384, 16385):
                    try:
                        out.append((await f.fetch(f"{srv.url}/{n}")).body)
                    except FetchError as e:
                        out.append((e.kind, "Got more than 16384 bytes" in str(e)))
            return out

        assert asyncio.run(go()) == [b"<title>t</title>", b"<title>t</title>",
                                     ("too_large", True)]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_an_idle_connection_is_reused_within_the_keepalive_time_only(
    pages: PageServer, http_pool: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both paths keep an idle connection for ``_KEEPALIVE`` seconds (30 in
    a crawl; 1 here): the next request within it takes the same connection
    (the same client port at the server), one after it opens a new one."""
    from loopcrawl.net import fetcher

    monkeypatch.setattr(fetcher, "_KEEPALIVE", 1.0)
    pages.add("/")

    async def go() -> None:
        async with Fetcher(Settings(http_pool=http_pool)) as f:
            for pause in (0.0, 0.0, 1.6):
                await asyncio.sleep(pause)
                assert (await f.fetch(pages.url + "/")).status == 200

    asyncio.run(go())
    first, again, late = (h.peer for h in pages.log)
    assert first == again != late


def _redirects(request: web.BaseRequest) -> web.StreamResponse:
    """/h<i>: a hop to /h<i+1> up to /h<n> (``?n=``); /cycle/a -> b -> c -> b;
    /self: a 307 to itself; /same: a 303 to itself for a POST, a page for a
    GET; /created: a 201 and /ok a 200, each with a Location; /mail: to a
    mailto: URL 300 characters long; /x-host: to the other server (``?to=``)."""
    path, q = request.path, request.query
    if path.startswith("/h"):
        i, n = int(path[2:]), int(q.get("n", "2"))
        if i < n:
            return web.Response(status=302, headers={"Location": f"/h{i + 1}?n={n}"})
    elif path.startswith("/cycle/"):
        nxt = {"a": "b", "b": "c", "c": "b"}[path[-1]]
        return web.Response(status=301, headers={"Location": f"/cycle/{nxt}"})
    elif path == "/self":
        return web.Response(status=307, headers={"Location": "/self"})
    elif path == "/same" and request.method == "POST":
        return web.Response(status=303, headers={"Location": "/same"})
    elif path in ("/created", "/ok"):
        return web.Response(status=201 if path == "/created" else 200, text="here",
                            headers={"Location": "/elsewhere"})
    elif path == "/mail":
        return web.Response(status=302, headers={"Location": "mailto:" + "m" * 293})
    elif path == "/x-host":
        return web.Response(status=302, headers={"Location": q["to"]})
    return web.Response(text=f"{request.method} {path}", content_type="text/plain")


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_redirects_hop_by_hop_word_for_word(http_pool: bool) -> None:
    """Each hop counted and waited for (its URL, never the first request's);
    loops caught at the first URL seen again (a POST's 303 to its own URL is
    a new request, no loop; a 307 to itself is one); the limit's message; a
    2xx's Location never followed; a non-http target's message cut at 200
    characters; a refused hop's kind and message as the check gave them."""
    calls: list[str] = []

    async def turn(url: str) -> None:
        calls.append(url)

    async def refuse(url: str) -> ErrorKind:
        return errors.ROBOTS_DENIED

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return _redirects(request)

    with PageServer(handler=handle) as srv:
        u = srv.url

        async def go() -> list[object]:
            out: list[object] = []
            async with Fetcher(Settings(http_pool=http_pool, max_redirects=2)) as f:
                for url, kw in [(u + "/h0?n=2", {}), (u + "/h0?n=3", {}), (u + "/ok", {}),
                                (u + "/created", {}), (u + "/cycle/a", {}),
                                (u + "/self", {"method": "POST", "body": b"x"}),
                                (u + "/same", {"method": "POST", "body": b"x"}),
                                (u + "/mail", {}), (u + "/h1?n=2", {"check_redirect": refuse})]:
                    try:
                        r = await f.fetch(url, wait_turn=turn, **kw)  # type: ignore[arg-type]
                        out.append((r.url[len(u):], r.status, r.redirects, r.method, r.body))
                    except FetchError as e:
                        out.append((e.kind, str(e).replace(u, "")))
                    out.append([c[len(u):] for c in calls])
                    calls.clear()
            return out

        got = asyncio.run(go())
    assert got == [
        ("/h2?n=2", 200, 2, "GET", b"GET /h2"), ["/h1?n=2", "/h2?n=2"],
        ("too_many_redirects", "more than 2 redirects"), ["/h1?n=3", "/h2?n=3"],
        ("/ok", 200, 0, "GET", b"here"), [],
        ("/created", 201, 0, "GET", b"here"), [],
        ("redirect_loop", "redirect loop back to /cycle/b"), ["/cycle/b", "/cycle/c"],
        ("redirect_loop", "redirect loop back to /self"), [],
        ("/same", 200, 1, "GET", b"GET /same"), ["/same"],
        ("redirect_refused",
         "redirect to a non-http(s) or invalid URL: " + repr("mailto:" + "m" * 193)), [],
        ("robots_denied", "redirect to /h2?n=2 refused (robots_denied)"), [],
    ]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_hop_to_another_host_drops_credentials_and_cookies_only(
    http_pool: bool, pool_calls: list[str],
) -> None:
    """A request's own cookies and credential headers (and ``-H`` ones) go on
    a hop to the same host and never to another one; its other headers go
    to both. Cookies alone (no header at all) are dropped the same way. With
    its cookies dropped, a hop is the pool's again."""
    seen: list[tuple[str, str | None, str | None, str | None]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append((request.path, request.headers.get("Cookie"),
                     request.headers.get("Authorization"), request.headers.get("X-Mine")))
        return _redirects(request)

    with PageServer(handler=handle) as one, PageServer(handler=handle) as other:

        async def go() -> None:
            settings = Settings(http_pool=http_pool, headers={"Authorization": "Bearer t"})
            async with Fetcher(settings) as f:
                for to in (one.url + "/same-host", other.url + "/other-host"):
                    await f.fetch(f"{one.url}/x-host?to={to}", cookies={"c": "v"},
                                  headers={"X-Mine": "m"})
            async with Fetcher(Settings(http_pool=http_pool)) as f:
                await f.fetch(f"{one.url}/x-host?to={other.url}/bare", cookies={"c": "v"})

        asyncio.run(go())
    assert seen == [
        ("/x-host", "c=v", "Bearer t", "m"), ("/same-host", "c=v", "Bearer t", "m"),
        ("/x-host", "c=v", "Bearer t", "m"), ("/other-host", None, None, "m"),
        ("/x-host", "c=v", None, None), ("/bare", None, None, None)]
    hops = [f"{other.url}/other-host", f"{other.url}/bare"]
    assert pool_calls == (hops if http_pool else [])  # cookies take the session


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_the_body_and_the_url_go_as_given(http_pool: bool) -> None:
    """A body is sent whatever the method (a GET with one takes the session:
    the pool sends none), and kept in ``request_body``; the URL's escapes go
    as they are (``%3B`` is not ``;``); a 303 makes a GET keep its headers."""
    seen: list[tuple[str, str, bytes, str | None]] = []

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        seen.append((request.method, request.raw_path, await request.read(),
                     request.headers.get("Content-Type")))
        if request.path == "/see-other":
            return web.Response(status=303, headers={"Location": "/p;b=%3B"})
        return web.Response(text="ok")

    with PageServer(handler=handle) as srv:

        async def go() -> list[tuple[str, bytes | None]]:
            async with Fetcher(Settings(http_pool=http_pool)) as f:
                got = [await f.fetch(srv.url + "/p;b=%3B?x=%3B"),
                       await f.fetch(srv.url + "/g", body=b"q"),
                       await f.fetch(srv.url + "/p", method="POST", body=b"n=1"),
                       await f.fetch(srv.url + "/see-other", headers={"Content-Type": "a/b"})]
            return [(r.method, r.request_body) for r in got]

        assert asyncio.run(go()) == [("GET", None), ("GET", b"q"), ("POST", b"n=1"),
                                     ("GET", None)]
    bytes_type = "application/octet-stream"  # aiohttp's, for a body given as bytes
    assert seen == [("GET", "/p;b=%3B?x=%3B", b"", None), ("GET", "/g", b"q", bytes_type),
                    ("POST", "/p", b"n=1", bytes_type), ("GET", "/see-other", b"", "a/b"),
                    ("GET", "/p;b=%3B", b"", "a/b")]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_an_answer_without_content_type_has_none(http_pool: bool) -> None:
    """No Content-Type header: the media type is "" (the page is then
    sniffed: ``Fetched.is_html``), not a made-up one."""
    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n<p>x</p>")
        await w.drain()

    with RawServer(answer) as srv:

        async def go() -> Fetched:
            async with Fetcher(Settings(http_pool=http_pool)) as f:
                return await f.fetch(srv.url + "/")

        got = asyncio.run(go())
    assert (got.content_type, got.charset, got.body, got.is_html) == ("", None, b"<p>x</p>", True)


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_location_with_bytes_that_are_not_utf8_is_followed_percent_encoded(
        http_pool: bool) -> None:
    """Location: /na\\xefve (Latin-1, as old servers send paths) goes to
    /na%EFve as a browser goes; /caf\\xc3\\xa9 (UTF-8) to /caf%C3%A9;
    \\xff\\xfe\\x80 (the highest and lowest bytes past ASCII) to %FF%FE%80.
    The first was refused as an invalid URL."""
    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = (await srv.read_request(r)).split(b" ")[1]
            if path.startswith(b"/go/"):
                w.write(b"HTTP/1.1 302 Found\r\nLocation: /" + bytes.fromhex(path[4:].decode())
                        + b"\r\nContent-Length: 0\r\n\r\n")
            else:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
            await w.drain()

    with RawServer(answer) as srv:

        async def go() -> list[tuple[str, bytes]]:
            async with Fetcher(Settings(http_pool=http_pool)) as f:
                return [((r := await f.fetch(f"{srv.url}/go/{raw.hex()}")).url[len(srv.url):],
                         r.body) for raw in (b"na\xefve", b"caf\xc3\xa9", b"\xff\xfe\x80/x y")]

        got = asyncio.run(go())
    assert got == [("/na%EFve", b"/na%EFve"), ("/caf%C3%A9", b"/caf%C3%A9"),
                   ("/%FF%FE%80/x%20y", b"/%FF%FE%80/x%20y")]


def test_a_fetcher_outside_async_with_says_so() -> None:
    """A caller that forgets ``async with`` is told what it forgot, not
    handed an AttributeError from inside aiohttp."""

    async def go() -> None:
        await Fetcher(Settings()).fetch("http://127.0.0.1:9/")

    with pytest.raises(AssertionError, match=r"^Fetcher used outside 'async with'$"):
        asyncio.run(go())


def test_both_paths_send_the_same_default_headers(pages: PageServer) -> None:
    """What every request carries unless ``-H`` says otherwise, the same on
    both paths: the crawl's User-Agent, a browser's Accept (HTML first: some
    servers answer ``*/*`` with JSON), and every encoding the crawler inflates."""
    pages.add("/")

    async def go(http_pool: bool) -> None:
        async with Fetcher(Settings(http_pool=http_pool, user_agent="ua/1")) as f:
            await f.fetch(pages.url + "/")

    for http_pool in (True, False):
        asyncio.run(go(http_pool))
    names = ("User-Agent", "Accept", "Accept-Encoding")
    pool, session = ({n: h.headers.get(n) for n in names} for h in pages.log)
    assert pool == session == {
        "User-Agent": "ua/1",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Encoding": session["Accept-Encoding"]}
    assert {"gzip", "deflate"} <= set((session["Accept-Encoding"] or "").split(", "))


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_tls_handshake_that_never_ends_is_cut_at_the_connect_timeout(http_pool: bool) -> None:
    """docs/hardening.md: ``connect_timeout`` bounds DNS, TCP and the TLS
    handshake. A server that accepts and then says nothing (no ServerHello)
    ends at 0.5 s, long before the 10 s read and total timeouts."""
    from .test_wire import RawServer

    async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    with RawServer(mute) as srv:

        async def go() -> tuple[ErrorKind, str]:
            settings = Settings(http_pool=http_pool, connect_timeout=0.5, timeout=10.0,
                                read_timeout=10.0, verify_tls=False)
            async with Fetcher(settings) as f:
                try:
                    await f.fetch(f"https://127.0.0.1:{srv.port}/")
                except FetchError as e:
                    return e.kind, str(e)
            raise AssertionError("no error")

        t0 = time.monotonic()
        kind, message = asyncio.run(go())
        took = time.monotonic() - t0
    assert kind == "timeout", message
    assert message.startswith("no complete answer within the timeout (")
    assert 0.5 <= took < 3.0, took


def test_an_idle_pool_connection_is_closed_after_the_keepalive_time(
    pages: PageServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pool's idle connections are swept by the watchdog once past the
    keep-alive time, while the crawl goes on: not held open until the next
    request to that origin (which may never come) or the crawl's end."""
    import psutil

    from loopcrawl.net import fetcher

    monkeypatch.setattr(fetcher, "_KEEPALIVE", 0.5)
    pages.add("/")

    def ours() -> int:
        return sum(1 for c in psutil.Process().net_connections("tcp")
                   if c.raddr and c.raddr.port == pages.port and c.status == "ESTABLISHED")

    async def go() -> tuple[int, int]:
        async with Fetcher(Settings(http_pool=True)) as f:
            await f.fetch(pages.url + "/")
            idle = ours()
            for _ in range(60):  # swept within a tick or two past 0.5 s
                await asyncio.sleep(0.05)
                if not ours():
                    break
            return idle, ours()

    assert asyncio.run(go()) == (1, 0)
@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_the_read_timeout_counts_from_the_headers_whatever_came_with_them(
    http_pool: bool,
) -> None:
    """The silence allowed before the headers and after them is counted anew
    once they are in, however few body bytes came with them (here one): the
    headers at 0.7 s, a byte, the rest 0.7 s later, a read timeout of 1.2 s."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        await asyncio.sleep(0.7)
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        await resp.write(b"<")
        await asyncio.sleep(0.7)
        await resp.write(b"title>late</title>")
        await resp.write_eof()
        return resp

    with PageServer(handler=handler) as server:
        recs, _ = run(server.url + "/", timeout=10.0, read_timeout=1.2, retries=0,
                      obey_robots=False, http_pool=http_pool)
    assert [(r.status, r.error, r.title) for r in recs] == [(200, None, "late")]


def test_the_watchdog_looks_every_eighth_of_the_shorter_timeout_at_most_a_second() -> None:
    """A timeout fires up to one look late: a look every 1/8 of the shorter
    timeout, at least 10 ms apart and at most 1 s."""
    from loopcrawl.net.watchdog import Watchdog

    assert Watchdog(30.0, 15.0).tick == 1.0  # the defaults: 15 / 8 capped
    assert Watchdog(16.0, 8.0).tick == 1.0 and Watchdog(8.0, 16.0).tick == 1.0
    assert Watchdog(4.0, 0.8).tick == 0.1 and Watchdog(0.8, 4.0).tick == 0.1
    assert Watchdog(0.04, 1.0).tick == 0.01  # 5 ms would be less than the floor


def test_a_closed_fetcher_leaves_no_watchdog_running() -> None:
    """The timeouts' task (named for a task listing) starts with the fetcher
    and has ended, not merely been asked to, when ``async with`` exits."""

    async def go() -> None:
        async with Fetcher(Settings()):
            (watchdog,) = [t for t in asyncio.all_tasks() if t.get_name() == "loopcrawl-timeouts"]
            assert not watchdog.done()
        assert watchdog.cancelled()

    asyncio.run(go())


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_body_that_stops_halfway_ends_at_the_read_timeout(http_pool: bool) -> None:
    """Silence after part of the body is counted as before the headers: the
    read timeout ends it, long before the total."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        await resp.write(b"<html><title>half")
        await asyncio.sleep(2.0)  # then a whole page: only a read timeout makes it an error
        return resp

    with PageServer(handler=handler) as server:
        t0 = time.monotonic()
        recs, _ = run(server.url + "/", timeout=8.0, read_timeout=0.5, retries=0,
                      obey_robots=False, http_pool=http_pool)
        took = time.monotonic() - t0
    assert [(r.error, r.message) for r in recs] == [
        ("timeout", "no complete answer within the timeout (no data for 0.5 s)")]
    assert took < 1.8


def test_one_look_ends_every_fetch_past_its_deadline_wherever_it_is() -> None:
    """The watchdog looks at every fetch each time: one within its timeouts
    (or ended already) does not hide those behind it."""
    from loopcrawl.net.watchdog import Watchdog

    async def go() -> list[tuple[str | None, bool]]:
        wd = Watchdog(10.0, 5.0)
        watches = []

        async def fetch() -> None:
            watches.append(wd.watch())
            await asyncio.sleep(30)

        tasks = [asyncio.create_task(fetch()) for _ in range(4)]
        await asyncio.sleep(0)
        ended, _fine, total, silent = watches
        ended.expired = "total"  # cancelled at an earlier look: not again
        total.deadline = silent.idle_until = 0.0
        wd.check(time.monotonic())
        await asyncio.sleep(0)
        got = [(w.expired, t.cancelled()) for w, t in zip(watches, tasks, strict=True)]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return got

    assert asyncio.run(go()) == [("total", False), (None, False), ("total", True),
                                 ("no data for 5 s", True)]


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_long_header_field_is_read_up_to_its_bound_and_refused_past_it_once(
    http_pool: bool, pool_calls: list[str],
) -> None:
    """A browser reads a 20,000-byte Content-Security-Policy; aiohttp's
    default bound (8,190 bytes a field) refused it as a connection error,
    retried twice. Now a field's name and value may hold 65,536 bytes and an
    answer 128 fields (``wire.HEADER_LIMITS``), on both paths alike: at each
    bound the page is read, one past it is ``too_large`` naming the bound,
    requested once (the server sends the same head again)."""
    from .test_wire import RawServer

    bound = 65536
    heads = {  # beside Content-Type and Content-Length: two fields of each answer
        "/csp": b"Content-Security-Policy: " + b"a" * 20000 + b"\r\n",
        "/at": b"X-Long: " + b"a" * (bound - len("X-Long")) + b"\r\n",
        "/past": b"X-Long: " + b"a" * (bound + 1 - len("X-Long")) + b"\r\n",
        "/fields128": b"".join(b"X-%d: 1\r\n" % i for i in range(126)),
        "/fields129": b"".join(b"X-%d: 1\r\n" % i for i in range(127)),
    }

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = (await srv.read_request(r)).split(b" ")[1].decode()
            body = b"<title>%s</title>" % path.encode()
            # The long field first: aiohttp counts its name too (the others' values only).
            w.write(b"HTTP/1.1 200 OK\r\n%sContent-Type: text/html\r\nContent-Length: %d\r\n"
                    b"\r\n%s" % (heads[path], len(body), body))
            await w.drain()

    with RawServer(answer) as srv:
        recs, _ = run([srv.url + p for p in heads], obey_robots=False, depth=0,
                      retry_backoff=0.01, http_pool=http_pool)
        asked = [target.split(b" ")[1].decode() for target in srv.requests]
    got = {r.url.rsplit("/", 1)[1]: (r.status, r.error, r.title) for r in recs}
    assert got == {"csp": (200, None, "/csp"), "at": (200, None, "/at"),
                   "past": (None, "too_large", None),
                   "fields128": (200, None, "/fields128"),
                   "fields129": (None, "too_large", None)}
    messages = {r.url.rsplit("/", 1)[1]: r.message or "" for r in recs if r.error}
    assert messages["past"].startswith("LineTooLong: ")
    assert messages["fields129"].startswith("BadHttpMessage: ")
    for m in messages.values():
        assert "128 fields of 65,536 bytes" in m, m
    assert sorted(asked) == sorted(heads)  # each once: no retry
    assert len(pool_calls) == (len(heads) if http_pool else 0)


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_a_body_that_is_not_its_content_encoding_is_final_not_retried(
    http_pool: bool, pool_calls: list[str],
) -> None:
    """Plain text sent as ``Content-Encoding: gzip`` is the same on every
    try: a 2xx (200 and 299, the range's ends) is ``content_encoding_error``
    at once, requested once (it was a connection error, requested three
    times); an answer of another status (300, 404) is that status with an
    empty body, as its status is the answer."""
    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = (await srv.read_request(r)).split(b" ")[1]
            w.write(b"HTTP/1.1 %s X\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: 16\r\n\r\n<title>t</title>" % path[1:])
            await w.drain()

    paths = ["/200", "/299", "/300", "/404"]
    with RawServer(answer) as srv:
        recs, _ = run([srv.url + p for p in paths], obey_robots=False, depth=0,
                      retry_backoff=0.01, http_pool=http_pool)
        asked = sorted(target.split(b" ")[1].decode() for target in srv.requests)
    got = {r.url.rsplit("/", 1)[1]: (r.status, r.error, r.bytes) for r in recs}
    assert got == {"200": (None, "content_encoding_error", 0),
                   "299": (None, "content_encoding_error", 0),
                   "300": (300, None, 0), "404": (404, "http_status", 0)}
    assert asked == paths  # each once
    assert all((r.message or "").startswith("ContentEncodingError: Can not decode "
                                            "content-encoding: gzip") for r in recs if r.error
               == "content_encoding_error")
    assert len(pool_calls) == (len(paths) if http_pool else 0)


def test_a_robots_txt_that_is_not_its_content_encoding_means_no_rules_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """robots.txt sent as gzip but plain (``Disallow: /`` if it were read)
    cannot be read as text, as a binary one cannot: no rules, at once, said
    word for word in its info line (as ``test_pins.py`` pins the others). It
    was a connection error: the host's pages waited out robots.txt's 30 s
    window twice, then failed ``robots_unreachable``."""
    import logging

    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            path = (await srv.read_request(r)).split(b" ")[1]
            body = b"User-agent: *\nDisallow: /\n" if path == b"/robots.txt" else b"<title>t</title>"
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body) if path == b"/robots.txt"
                    else b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                    b"\r\n%s" % (len(body), body))
            await w.drain()

    with RawServer(answer) as srv, caplog.at_level(logging.INFO, logger="loopcrawl"):
        recs, _ = run(srv.url + "/", depth=0, retry_backoff=0.01)
        asked = [target.split(b" ")[1].decode() for target in srv.requests]
    assert [(r.status, r.error, r.title) for r in recs] == [(200, None, "t")]
    assert asked == ["/robots.txt", "/"]
    host = srv.url.removeprefix("http://")
    assert [r.getMessage() for r in caplog.records if "robots.txt" in r.getMessage()] == [
        f"{host}: robots.txt cannot be read (ContentEncodingError: Can not decode "
        f"content-encoding: gzip (the body is not what its Content-Encoding says)): "
        f"everything allowed"]


def test_a_proxys_tunnel_is_opened_within_the_connect_timeout() -> None:
    """An https page through ``proxy`` opens its tunnel first (CONNECT):
    that is connecting too, bounded by ``connect_timeout`` (aiohttp's
    ``connect``; its ``sock_connect`` covers the TCP connect alone). A proxy
    that takes the connection and never answers CONNECT is a timeout naming
    the connection, asked once: not a wait for the read timeout's silence."""
    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        await r.read()  # silent until the crawler lets go

    with RawServer(answer) as srv:
        [rec], _ = run("https://site.invalid/", proxy=srv.url, obey_robots=False, retries=0,
                       timeout=10.0, read_timeout=2.0, connect_timeout=0.3)
    assert (rec.error, rec.message) == ("timeout", "no complete answer within the timeout "
                                        "(Connection timeout to host https://site.invalid/)")
    assert [h.split(b"\r\n")[0] for h in srv.requests] == [b"CONNECT site.invalid:443 HTTP/1.1"]
