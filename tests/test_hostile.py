"""The hostile web: each defence against a real misbehaving server on 127.0.0.1."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from aiohttp import web

from loopcrawl.testsite import hostile
from loopcrawl.testsite.hostile import ENCODED_TITLES, EXPECTED, TRAPS

from .conftest import PageServer
from .helpers import by_url, run

# Short timeouts keep the slow cases quick; every other setting is the default.
FAST = {"timeout": 3.0, "connect_timeout": 2.0, "read_timeout": 1.5, "retry_backoff": 0.05}


@pytest.fixture(scope="module")
def evil() -> Iterator[PageServer]:
    with PageServer(handler=hostile.handle, hosts=("127.0.0.1", "127.0.0.2")) as server:
        yield server


@pytest.fixture(params=[True, False], ids=["pool", "session"])
def http_pool(request: pytest.FixtureRequest, pool_calls: list[str]) -> Iterator[bool]:
    """Both ways a GET can go: loopcrawl's pool (wire.py) or aiohttp's session
    (and the test checks it went that way)."""
    yield bool(request.param)
    assert bool(pool_calls) == request.param, pool_calls[:3]


def crawl_paths(server: PageServer, paths: list[str], **kw: object):
    """Crawl exactly ``paths`` (no link following beyond them)."""
    settings = {**FAST, "depth": 0, "obey_robots": False, **kw}
    recs, stats = run([server.url + p for p in paths], **settings)
    return {r.url.removeprefix(server.url): r for r in recs}, stats


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_decompression_bombs_are_cut_at_the_cap(evil: PageServer, http_pool: bool, encoding: str) -> None:
    proc = psutil.Process()
    before = peak = proc.memory_info().rss
    done = threading.Event()

    def sample() -> None:  # this crawl's own peak (ru_maxrss keeps earlier tests' peaks)
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, proc.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        got, _ = crawl_paths(evil, [f"/hostile/bomb/{encoding}"],
                             max_response_size=5 * 1024 * 1024, http_pool=http_pool)
    finally:
        done.set()
        sampler.join(5)
    rec = got[f"/hostile/bomb/{encoding}"]
    assert rec.error == "too_large", rec
    assert "decompressed" in (rec.message or "")
    assert (peak - before) / 2**20 < 100  # memory stays flat: the bomb inflates to gigabytes


def test_size_limits(evil: PageServer, http_pool: bool) -> None:
    paths = ["/hostile/big.bin", "/hostile/endless-binary", "/hostile/endless",
             "/hostile/huge-page", "/hostile/image.png"]
    got, _ = crawl_paths(evil, paths, http_pool=http_pool)
    for p in paths:
        want = EXPECTED[p]
        assert (got[p].error if isinstance(want, str) else got[p].status) == want, got[p]
    assert got["/hostile/image.png"].links == 0  # non-HTML is never parsed
    assert "Content-Length" in (got["/hostile/big.bin"].message or "")  # refused up front


def test_slow_and_broken_servers_end_as_errors_within_the_timeouts(evil: PageServer, http_pool: bool) -> None:
    paths = ["/hostile/silent", "/hostile/trickle", "/hostile/short-body", "/hostile/reset"]
    t0 = time.monotonic()
    got, stats = crawl_paths(evil, paths, retries=0, http_pool=http_pool)
    assert time.monotonic() - t0 < 3.0 + 2.0  # the total timeout, plus slack
    assert {p: got[p].error for p in paths} == {p: EXPECTED[p] for p in paths}
    assert stats.records == 4


def test_a_silent_server_ends_at_the_read_timeout_a_trickling_one_at_the_total(
    evil: PageServer, http_pool: bool,
) -> None:
    t0 = time.monotonic()
    got, _ = crawl_paths(evil, ["/hostile/silent"], retries=0, timeout=20.0, read_timeout=0.5,
                         http_pool=http_pool)
    assert time.monotonic() - t0 < 5.0  # long before the total of 20 s
    assert got["/hostile/silent"].error == "timeout"
    assert "no data for 0.5 s" in (got["/hostile/silent"].message or "")
    # A byte a second keeps a 1.5 s read timeout from firing: the total ends it.
    got, _ = crawl_paths(evil, ["/hostile/trickle"], retries=0, timeout=2.5, read_timeout=1.5,
                         http_pool=http_pool)
    assert got["/hostile/trickle"].error == "timeout"
    assert "(total)" in (got["/hostile/trickle"].message or "")


def test_redirect_defences(evil: PageServer, http_pool: bool) -> None:
    paths = ["/hostile/redirect/chain/0", "/hostile/redirect/loop-a", "/hostile/redirect/file",
             "/hostile/redirect/data", "/hostile/redirect/javascript",
             "/hostile/redirect/other-host"]
    evil.log.clear()  # the module's server: other tests reach 127.0.0.2 on purpose
    got, _ = crawl_paths(evil, paths, http_pool=http_pool)
    for p in paths[:-1]:
        assert got[p].error == EXPECTED[p], got[p]
    assert "more than 10 redirects" in (got["/hostile/redirect/chain/0"].message or "")
    # Off-scope redirect targets are refused like off-scope links.
    assert got["/hostile/redirect/other-host"].error == "redirect_refused"
    assert not any(h.host.startswith("127.0.0.2") for h in evil.log)


def test_retries_honour_retry_after(evil: PageServer) -> None:
    paths = ["/hostile/flaky", "/hostile/throttle", "/hostile/throttle-date"]
    t0 = time.monotonic()
    got, stats = crawl_paths(evil, paths, per_host=8)
    assert all(got[p].status == 200 for p in paths), got
    assert stats.retries == 4  # flaky twice, each throttle once
    # Retry-After: 1 (seconds) and an HTTP-date ~2 s ahead were both waited for.
    assert time.monotonic() - t0 >= 1.0


def test_4xx_other_than_429_is_not_retried(pages: PageServer) -> None:
    pages.add("/", links=["/forbidden"])
    pages.add("/forbidden", status=403)
    _, stats = run(pages.url + "/", **FAST)
    assert pages.paths().count("/forbidden") == 1
    assert stats.retries == 0


def test_traps_end_by_themselves(evil: PageServer) -> None:
    recs, stats = run([evil.url + p for p in TRAPS], **FAST, obey_robots=False,
                      max_query_variants=30)
    assert stats.errors["trap"] > 0
    assert stats.skipped["trap_url_length"] > 0
    assert stats.skipped["trap_repeated_segments"] > 0
    fetched = [r for r in recs if r.status is not None]
    assert len(fetched) < 200  # four endless URL spaces, a bounded crawl
    assert all(len(r.url) <= 2048 for r in recs)


def test_per_host_budget(evil: PageServer) -> None:
    recs, stats = run(evil.url + "/hostile/calendar?month=2024-01", **FAST,
                      obey_robots=False, max_pages_per_host=10)
    assert len([r for r in recs if r.status is not None]) == 10
    assert stats.errors["trap"] >= 1


def test_encodings_decode_titles(evil: PageServer) -> None:
    got, _ = crawl_paths(evil, list(ENCODED_TITLES))
    for path, title in ENCODED_TITLES.items():
        assert got[path].status == 200
        assert got[path].title == title, path


def test_malformed_html_is_parsed_or_skipped_quickly(evil: PageServer) -> None:
    t0 = time.monotonic()
    paths = ["/hostile/deep", "/hostile/soup", "/hostile/nul", "/hostile/many-links"]
    got, stats = crawl_paths(evil, paths, max_links_per_page=500)
    assert time.monotonic() - t0 < 10
    assert all(got[p].status == 200 for p in paths)
    assert got["/hostile/deep"].links == 1  # the link at the bottom of 100,000 divs
    assert got["/hostile/many-links"].links == 500  # the per-page cap
    assert stats.skipped["links_per_page_cap"] == 2  # many-links and the soup


def test_sitemaps_without_entity_expansion(evil: PageServer) -> None:
    pages = PageServer()
    with pages:
        pages.add("/robots.txt", content_type="text/plain",
                  body=f"User-agent: *\nSitemap: {pages.url}/sm-index.xml\n")
        pages.add("/sm-index.xml", content_type="application/xml", body=(
            '<?xml version="1.0"?><sitemapindex><sitemap><loc>/sm.xml.gz</loc></sitemap>'
            f"<sitemap><loc>{pages.url}/sm.xml.gz</loc></sitemap></sitemapindex>"))
        urls = "".join(f"<url><loc>{pages.url}/p{i}</loc></url>" for i in range(5))
        pages.add("/sm.xml.gz", content_type="application/x-gzip", body=gzip.compress(
            f'<?xml version="1.0"?><urlset>{urls}</urlset>'.encode()))
        for i in range(5):
            pages.add(f"/p{i}")
        pages.add("/", links=[])
        recs, _ = run(pages.url + "/", follow_sitemaps=True)
        got = by_url(recs)
        assert {f"{pages.url}/p{i}" for i in range(5)} <= set(got)
        assert got[f"{pages.url}/sm.xml.gz"].links == 5
    # The hostile sitemaps (an external entity and a billion laughs), reached
    # as sitemaps: robots.txt names the hostile index, which lists them.
    async def with_robots(request: web.BaseRequest) -> web.StreamResponse:
        if request.raw_path == "/robots.txt":
            return web.Response(text=f"User-agent: *\nSitemap: http://{request.host}"
                                     "/hostile/sitemap-index.xml\n")
        return await hostile.handle(request)

    with PageServer(handler=with_robots) as server:
        t0 = time.monotonic()
        recs, stats = run(server.url + "/hostile/echo", **FAST, follow_sitemaps=True)
        took = time.monotonic() - t0
    got = {r.url.removeprefix(server.url): r for r in recs}
    assert took < 10
    assert not any("passwd" in u or "root:" in u or "lol" in u for u in got)
    xxe = got["/hostile/sitemap-xxe.xml"]
    assert (xxe.status, xxe.error) == (200, None)
    assert xxe.links == 2  # /hostile/sm/ (the entity left out) and xxe-ok
    assert got["/hostile/sm/xxe-ok"].referrer == server.url + "/hostile/sitemap-xxe.xml"
    assert got["/hostile/sitemap-laughs.xml"].status == 200
    assert got["/hostile/sitemap-pages.xml.gz"].links == 20
    assert {f"/hostile/sm/p{i}" for i in range(20)} <= set(got)
    assert not stats.errors and not +stats.skipped  # no URL made of /etc/passwd was even seen


def test_hostile_sitemaps_parse_safely(evil: PageServer) -> None:
    import urllib.request

    from loopcrawl.sitemaps import parse_sitemap

    for name in ("sitemap-xxe.xml", "sitemap-laughs.xml"):
        body = urllib.request.urlopen(f"{evil.url}/hostile/{name}", timeout=5).read()
        t0 = time.monotonic()
        sm = parse_sitemap(body)
        assert time.monotonic() - t0 < 1
        assert not any("root:" in u or "lol" * 100 in u for u in sm.urls)
        if name == "sitemap-xxe.xml":  # the entity is left out, the rest is read
            assert sm.urls[-1].endswith("/hostile/sm/xxe-ok")


@pytest.mark.parametrize(
    ("robots", "ctype", "allowed"),
    [
        (b"User-agent: *\nDisallow: /x\n" + b"# pad\n" * 200_000 + b"Disallow: /\n",
         "text/plain", True),  # huge: rules past 500 KiB are ignored
        (b"\x89PNG\r\n\x1a\n\0\0\0binary", "image/png", True),  # binary: no rules
        (b"\xef\xbb\xbfUser-agent: *\nDisallow: /ok\n", "text/plain", False),  # a UTF-8 BOM
    ],
)
def test_hostile_robots(pages: PageServer, robots: bytes, ctype: str, allowed: bool) -> None:
    pages.add("/robots.txt", body=robots, content_type=ctype)
    pages.add("/", links=["/ok"])
    pages.add("/ok")
    recs, _ = run(pages.url + "/")
    assert (by_url(recs)[pages.url + "/ok"].status == 200) is allowed


def test_robots_redirect_is_followed(pages: PageServer) -> None:
    pages.add("/robots.txt", status=301, headers={"Location": "/real-robots.txt"})
    pages.add("/real-robots.txt", body="User-agent: *\nDisallow: /no\n", content_type="text/plain")
    pages.add("/", links=["/no", "/yes"])
    pages.add("/no")
    pages.add("/yes")
    recs, _ = run(pages.url + "/")
    got = by_url(recs)
    assert got[pages.url + "/no"].error == "robots_denied"
    assert got[pages.url + "/yes"].status == 200


def test_odd_and_invalid_links(pages: PageServer) -> None:
    pages.add("/", body=(
        '<a href="  /t%61rget  ">1</a><a href="HTTP://127.0.0.1:{port}/target">2</a>'
        '<a href="//127.0.0.1:{port}/./target#x">3</a><a href="/a/../target">4</a>'
        '<a href="../../../target">5</a><a href="/t&#97;rget">6</a>'
        '<a href="http://[bad">bad</a><a href="http://a b/">bad2</a>'
        '<a href="mailto:x@y.z">m</a>').replace("{port}", str(pages.port)))
    pages.add("/target")
    recs, stats = run(pages.url + "/")
    assert sorted(r.url.removeprefix(pages.url) for r in recs) == ["/", "/target"]
    assert pages.paths().count("/target") == 1
    assert stats.skipped["invalid_url"] == 2
    assert stats.skipped["not_http"] == 1


def test_testsite_serves_the_hostile_corner() -> None:
    from loopcrawl.testsite import ServerThread, Site

    with ServerThread(Site(10), hostile=True) as srv:
        recs, stats = run(srv.base_url + "/hostile/", **{**FAST, "timeout": 1.5, "read_timeout": 1.0},
                          obey_robots=False, depth=1,
                          max_links_per_page=100, max_query_variants=20)
    got = {r.url.removeprefix(srv.base_url): r for r in recs}
    for path, want in EXPECTED.items():
        rec = got[path]
        assert (rec.error if isinstance(want, str) else rec.status) == want, rec
    assert stats.errors["too_large"] >= 8


def test_credentials_never_follow_a_redirect_to_another_host(evil: PageServer, http_pool: bool) -> None:
    """A second listener on 127.0.0.2 records what reaches it."""
    secrets = {"Authorization": "Bearer secret-token", "Proxy-Authorization": "Basic c2VjcmV0",
               "Cookie": "preset=secret-cookie"}
    evil.log.clear()
    recs, _ = run(evil.url + "/hostile/redirect/other-host", **FAST, obey_robots=False,
                  scope="any", depth=0, headers=secrets, http_auth=("user", "secret-pass"),
                  http_pool=http_pool)
    assert recs[0].status == 200 and recs[0].final_url.startswith("http://127.0.0.2:")
    first = [h for h in evil.log if h.host.startswith("127.0.0.1")]
    second = [h for h in evil.log if h.host.startswith("127.0.0.2")]
    assert first and second
    # Sent to the host they were meant for (the Authorization is http_auth's:
    # it goes over the one in the headers).
    sent_first = {k.lower(): v for k, v in first[0].headers.items()}
    assert sent_first["proxy-authorization"] == "Basic c2VjcmV0"
    assert "preset=secret-cookie" in sent_first["cookie"]
    assert sent_first["authorization"] == "Basic dXNlcjpzZWNyZXQtcGFzcw=="
    for hit in second:
        sent = {k.lower(): v for k, v in hit.headers.items()}
        assert "authorization" not in sent and "proxy-authorization" not in sent
        assert "secret" not in sent.get("cookie", "")
