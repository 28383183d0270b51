"""docs/hardening.md, defence by defence, at each limit's boundary: the
cases the hostile corner's tests cover only far from the limit."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator

import pytest
from aiohttp import web

from loopcrawl.sitemaps import MAX_SITEMAP_SIZE, MAX_SITEMAP_URLS, parse_sitemap

from .conftest import PageServer
from .helpers import by_url, run

ROBOTS_CAP = 500 * 1024  # bytes of robots.txt read (docs/hardening.md)


async def _chunked(request: web.BaseRequest) -> web.StreamResponse:
    """/n/<size>: a body of ``size`` bytes in 1000-byte chunks, no Content-Length."""
    size = int(request.path.rsplit("/", 1)[1])
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(0, size, 1000):
        await resp.write(b"x" * min(1000, size - i))
    await resp.write_eof()
    return resp


@pytest.fixture
def chunked() -> Iterator[PageServer]:
    with PageServer(handler=_chunked) as server:
        yield server


@pytest.mark.parametrize("http_pool", [True, False], ids=["pool", "session"])
def test_size_cap_while_streaming_at_its_boundary(chunked: PageServer, http_pool: bool) -> None:
    """No Content-Length to refuse up front: the cap is kept while reading."""
    cap = 10_000
    recs, _ = run([chunked.url + f"/n/{cap}", chunked.url + f"/n/{cap + 1}"], depth=0,
                  obey_robots=False, max_response_size=cap, http_pool=http_pool)
    got = by_url(recs)
    at, over = got[chunked.url + f"/n/{cap}"], got[chunked.url + f"/n/{cap + 1}"]
    assert (at.status, at.bytes, at.error) == (200, cap, None)
    assert over.error == "too_large"


def test_robots_txt_is_read_up_to_500_kib_exactly(pages: PageServer) -> None:
    """The rule ``Disallow: /xy$`` is placed so that its last byte before
    ``$`` is byte 500 KiB: read to exactly 500 KiB it is ``/xy`` (a prefix);
    one byte more would make it ``/xy$`` (exact), one byte less ``/x``."""
    head = b"User-agent: *\n"
    rule = b"Disallow: /xy"
    pad = ROBOTS_CAP - len(head) - len(rule)
    body = head + b"#" * (pad - 1) + b"\n" + rule + b"$\n"
    assert body.index(b"$") == ROBOTS_CAP
    pages.add("/robots.txt", body=body, content_type="text/plain")
    pages.add("/", links=["/xy", "/xyz", "/xz"])
    for p in ("/xy", "/xyz", "/xz"):
        pages.add(p)
    recs, _ = run(pages.url + "/")
    got = by_url(recs)
    assert got[pages.url + "/xy"].error == "robots_denied"
    assert got[pages.url + "/xyz"].error == "robots_denied"  # /xy as a prefix: not /xy$
    assert got[pages.url + "/xz"].status == 200  # not /x


def test_robots_redirect_that_cannot_be_followed_means_no_rules(pages: PageServer) -> None:
    """RFC 9309 §2.3.1.2: a robots.txt redirect loop counts as "unavailable",
    which allows everything (and does not hold the host's pages back)."""
    pages.add("/robots.txt", status=301, headers={"Location": "/r2"})
    pages.add("/r2", status=301, headers={"Location": "/robots.txt"})
    pages.add("/", links=["/a"])
    pages.add("/a")
    recs, _ = run(pages.url + "/", robots_error_retry=30.0)
    assert sorted((r.url.removeprefix(pages.url), r.status) for r in recs) == [
        ("/", 200), ("/a", 200)]
    assert pages.paths().count("/robots.txt") == 1


def test_the_adaptive_delay_doubles_then_decays_to_the_base_delay() -> None:
    """Base delay 0.5 s. A 429 doubles the host's delay to 1 s; each success
    then takes it x0.75 (0.75, 0.5625), and never below the base (0.5, not
    0.42). A request's start fixes the next one's earliest start, so the
    gaps between starts at the server are: 1 (the retry), 1, 0.75, 0.5625,
    0.5, 0.5."""
    answers = iter([429])

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/a":
            return web.Response(status=next(answers, 200), text="a")
        if request.path == "/":
            links = "".join(f'<a href="/{c}">x</a>' for c in "bcde")
            return web.Response(text=links, content_type="text/html")
        return web.Response(text="page", content_type="text/html")

    with PageServer(handler=handler) as server:
        run([server.url + "/a", server.url + "/"], obey_robots=False, per_host=1,
            concurrency=1, delay=0.5, retries=1, retry_backoff=0.0)
        hits = [(h.path, h.start) for h in server.log]
    assert [p for p, _ in hits] == ["/a", "/a", "/", "/b", "/c", "/d", "/e"]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(hits)]
    want = [1.0, 1.0, 0.75, 0.5625, 0.5, 0.5]
    # The first request also opens the connection: the server sees it late.
    assert want[0] - 0.1 <= gaps[0] < want[0] + 0.1, (gaps, want)
    for got_gap, w in zip(gaps[1:], want[1:], strict=True):
        assert w - 0.03 <= got_gap < w + 0.1, (gaps, want)


# -- sitemaps ---------------------------------------------------------------------

def _urlset(n: int) -> bytes:
    locs = "".join(f"<url><loc>http://h/{i}</loc></url>" for i in range(n))
    return f'<?xml version="1.0"?><urlset>{locs}</urlset>'.encode()


def test_sitemap_url_cap_is_exact() -> None:
    assert MAX_SITEMAP_URLS == 50_000  # the protocol's limit
    sm = parse_sitemap(_urlset(MAX_SITEMAP_URLS + 1))
    assert len(sm.urls) == MAX_SITEMAP_URLS and sm.urls[-1] == f"http://h/{MAX_SITEMAP_URLS - 1}"
    assert len(parse_sitemap(_urlset(MAX_SITEMAP_URLS - 1)).urls) == MAX_SITEMAP_URLS - 1


def test_gzipped_sitemap_inflate_cap_is_exact() -> None:
    """50 MB inflated is read; one byte more is refused, without inflating on."""
    assert MAX_SITEMAP_SIZE == 50 * 1024 * 1024
    doc = _urlset(3)
    close = b"</urlset>"
    head = doc[: -len(close)]

    def padded(size: int) -> bytes:
        return gzip.compress(head + b" " * (size - len(doc)) + close, compresslevel=1)

    at = parse_sitemap(padded(MAX_SITEMAP_SIZE))
    assert at.error is None and len(at.urls) == 3
    over = parse_sitemap(padded(MAX_SITEMAP_SIZE + 1))
    assert over.error is not None and "inflates past" in over.error
    assert over.urls == []
