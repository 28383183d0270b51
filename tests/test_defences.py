"""docs/hardening.md, defence by defence, at each limit's boundary: the
cases the hostile corner's tests cover only far from the limit."""

from __future__ import annotations

import errno
import gzip
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from loopcrawl.sitemaps import MAX_SITEMAP_SIZE, MAX_SITEMAP_URLS, Sitemap, parse_sitemap

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


def test_a_sitemaps_pages_are_one_level_deeper_in_scope_and_referred(pages: PageServer) -> None:
    """robots.txt's sitemap index at depth 0, its child sitemaps at the same
    depth (referred by the index), their pages one level deeper (referred by
    their sitemap) and filtered as links are (scope, counted); a listed file
    that is not a sitemap is an ``invalid_sitemap`` record saying why."""
    u = pages.url
    other = "http://127.0.0.2:9"
    pages.add("/robots.txt", content_type="text/plain",
              body=f"User-agent: *\nSitemap: {u}/index.xml\n")
    pages.add("/index.xml", content_type="application/xml", body=(
        f"<sitemapindex><sitemap><loc>{u}/pages.xml</loc></sitemap>"
        f"<sitemap><loc>{u}/page.html</loc></sitemap>"
        f"<sitemap><loc>{other}/elsewhere.xml</loc></sitemap></sitemapindex>"))
    pages.add("/pages.xml", content_type="application/xml", body=(
        f"<urlset><url><loc>{u}/p0</loc></url><url><loc>{u}/p1</loc></url>"
        f"<url><loc>{other}/away</loc></url></urlset>"))
    pages.add("/page.html", links=["/p0"])
    pages.add("/", links=[f"{other}/also-away"])
    for p in ("/p0", "/p1"):
        pages.add(p, links=["/deep"])
    pages.add("/deep")
    recs, stats = run(u + "/", follow_sitemaps=True, depth=1, retries=0)
    got = by_url(recs)
    assert set(got) == {u + p for p in ("/", "/index.xml", "/pages.xml", "/page.html", "/p0", "/p1")}
    assert [(got[u + p].depth, got[u + p].referrer) for p in ("/index.xml", "/pages.xml", "/p0", "/p1")] == [
        (0, None), (0, u + "/index.xml"), (1, u + "/pages.xml"), (1, u + "/pages.xml")]
    assert got[u + "/pages.xml"].links == 3
    bad = got[u + "/page.html"]
    assert (bad.error, bad.message) == ("invalid_sitemap", "not a sitemap (root element 'html')")
    assert stats.skipped["scope"] == 2  # the sitemap's page elsewhere, and the seed's link
    assert stats.skipped["depth"] == 2  # /deep, from p0 and p1 at the depth limit


def test_without_sitemap_lines_the_origins_sitemap_xml_is_read(pages: PageServer) -> None:
    """No ``Sitemap:`` in robots.txt: ``/sitemap.xml`` at the seed's origin
    (not under the seed's path) is read, at depth 0, and what it lists."""
    u = pages.url
    pages.add("/robots.txt", content_type="text/plain", body="User-agent: *\nDisallow:\n")
    pages.add("/sitemap.xml", content_type="application/xml",
              body=f"<urlset><url><loc>{u}/only-listed</loc></url></urlset>")
    pages.add("/only-listed")
    pages.add("/deep//seed", links=[])  # a "//" in the path: the origin ends before
    recs, _ = run(u + "/deep//seed", follow_sitemaps=True)
    got = by_url(recs)
    assert set(got) == {u + "/deep//seed", u + "/sitemap.xml", u + "/only-listed"}
    assert (got[u + "/sitemap.xml"].depth, got[u + "/sitemap.xml"].links) == (0, 1)
    assert got[u + "/only-listed"].referrer == u + "/sitemap.xml"
    assert pages.paths().count("/robots.txt") == 1


def test_sitemaps_of_a_host_whose_robots_txt_cannot_be_had(pages: PageServer) -> None:
    """robots.txt answering 503: the crawl goes on (its pages fail as
    ``robots_unreachable``), it does not end on the sitemaps' seeding."""
    pages.add("/robots.txt", status=503, content_type="text/plain", body="down")
    pages.add("/")
    recs, _ = run(pages.url + "/", follow_sitemaps=True, retries=0)
    assert {r.error for r in recs} == {"robots_unreachable"}
    assert {r.url for r in recs} == {pages.url + "/", pages.url + "/sitemap.xml"}


def test_a_sitemap_is_read_by_its_locs_only() -> None:
    """Only ``<loc>`` text is a URL (not ``<lastmod>``, an empty ``<loc>``);
    comments and processing instructions inside one are dropped, not where
    the URL ends."""
    sm = parse_sitemap(
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc> http://h/a<!-- c -->b </loc><lastmod>2024-01-01</lastmod>"
        b"<changefreq>daily</changefreq><priority>0.5</priority></url>"
        b"<url><loc></loc></url><url><loc>  </loc></url>"
        b"<url><loc>http://h/c<?pi x?>d</loc></url></urlset>")
    assert sm == Sitemap(urls=["http://h/ab", "http://h/cd"])
    index = parse_sitemap(b"<sitemapindex><sitemap><loc>http://h/s.xml</loc>"
                          b"<lastmod>2024-01-01</lastmod></sitemap></sitemapindex>")
    assert index == Sitemap(sitemaps=["http://h/s.xml"])


@pytest.mark.parametrize(("body", "error"), [
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff\xff",  # a gzip header, bad deflate data
     "bad gzip: Error -3 while decompressing data: invalid block type"),
    (b"", "not XML: Document is empty"),  # then libxml2's position, in its words
    (b"\x1f\x8b\x08\x00", "not XML: Document is empty"),  # a gzip header alone: nothing inflated
    (b"<!-- nothing but a comment -->", "empty document"),
    (b"<html><body><a href='/x'>x</a></body></html>", "not a sitemap (root element 'html')"),
    (b"<rss><channel><loc>http://h/a</loc></channel></rss>", "not a sitemap (root element 'rss')"),
])
def test_what_is_not_a_sitemap_is_said_word_for_word(body: bytes, error: str) -> None:
    sm = parse_sitemap(body)
    assert (sm.urls, sm.sitemaps) == ([], [])
    assert sm.error is not None and sm.error.startswith(error), sm.error
    if not error.startswith("not XML"):
        assert sm.error == error


def test_a_sitemap_past_the_parsers_depth_limit_yields_nothing() -> None:
    """No huge trees: libxml2's limits (256 levels) stay on, so a sitemap
    nested deeper is not read (as any of its URLs would be)."""
    def nested(depth: int) -> bytes:
        return (b"<urlset>" + b"<a>" * depth + b"<url><loc>http://h/deep</loc></url>"
                + b"</a>" * depth + b"<url><loc>http://h/x</loc></url></urlset>")

    assert parse_sitemap(nested(200)).urls == ["http://h/deep", "http://h/x"]
    assert parse_sitemap(nested(300)).urls == []


def test_a_sitemaps_doctype_names_no_file_that_is_opened(tmp_path: Path) -> None:
    """No DTD is loaded or validated against: a DOCTYPE naming a local file
    (here a FIFO, which tells whether it was opened; /dev/zero would read
    forever) is never opened."""
    fifo = tmp_path / "dtd"
    os.mkfifo(fifo)
    body = (f'<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "{fifo}">'
            "<urlset><url><loc>http://h/a</loc></url></urlset>").encode()
    got: list[Sitemap] = []
    reader = threading.Thread(target=lambda: got.append(parse_sitemap(body)), daemon=True)
    reader.start()
    reader.join(1)
    try:  # succeeds only if the parser has the FIFO open for reading
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        assert e.errno == errno.ENXIO
    else:  # let the parser go on, then fail
        os.write(fd, b"<!ENTITY e 'x'>")
        os.close(fd)
        reader.join(5)
        pytest.fail("the sitemap's DOCTYPE file was opened")
    assert got == [Sitemap(urls=["http://h/a"])]
