"""The synthetic test site: deterministic, realistic, and its ground truth is right.

The last point is checked the hard way: a small independent crawler written here
(aiohttp + selectolax + urllib.parse, nothing from loopcrawl) walks the real server
and must find exactly ``Site.expected()``, at the same depths.
"""

from __future__ import annotations

import asyncio
import errno
import re
import string
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import pytest
from selectolax.lexbor import LexborHTMLParser
from yarl import URL

from loopcrawl.testsite import ServerProcess, ServerThread, Site, TestSiteServer

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1:8000"
BASE = "http://127.0.0.1:8000"
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


# --------------------------------------------------------------- an independent crawler

def _dedot(path: str) -> str:
    """RFC 3986 remove_dot_segments, written again here on purpose."""
    out: list[str] = []
    segs = path.split("/")[1:]
    for n, seg in enumerate(segs):
        if seg in (".", ".."):
            if seg == ".." and out:
                out.pop()
            if n == len(segs) - 1:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _unquote_unreserved(s: str) -> str:
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in UNRESERVED else m.group(0).upper()
    return re.sub(r"%([0-9A-Fa-f]{2})", fix, s)


def canon(url: str) -> str | None:
    """Absolute http(s) URL -> canonical form (no fragment); None for other schemes."""
    p = urlsplit(url)
    if p.scheme.lower() not in ("http", "https"):
        return None
    path = _dedot(_unquote_unreserved(p.path or "/"))
    return urlunsplit((p.scheme.lower(), p.netloc.lower(), path, p.query, ""))


def extract(page_url: str, html: str) -> list[str | None]:
    """Canonical targets of every <a href>, honouring <base href>."""
    tree = LexborHTMLParser(html)
    base = page_url
    node = tree.css_first("base[href]")
    if node is not None:
        base = urljoin(page_url, (node.attributes.get("href") or "").strip())
    out: list[str | None] = []
    for a in tree.css("a[href]"):
        href = (a.attributes.get("href") or "").strip(" \t\n\r\f")
        out.append(canon(urljoin(base, href)))
    return out


async def bfs_crawl(base: str) -> tuple[dict[str, int], set[str]]:
    """Level by level from ``base/``: {200 HTML URL: depth}, and the 404 URLs."""
    host = urlsplit(base).netloc
    start = base + "/"
    found: dict[str, int] = {}
    broken: set[str] = set()
    seen = {start}
    level, depth = [start], 0
    sem = asyncio.Semaphore(16)

    async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[str, int, str, str]:
        async with sem, session.get(url) as resp:
            html = ""
            if resp.headers.get("Content-Type", "").startswith("text/html"):
                html = await resp.text()
            return str(resp.url), resp.status, html, url

    async with aiohttp.ClientSession() as session:
        while level:
            results = await asyncio.gather(*(fetch(session, u) for u in level))
            nxt: list[str] = []
            for final_raw, status, html, url in results:
                if status == 404:
                    broken.add(url)
                final = canon(final_raw)
                if status != 200 or not html or final is None or final in found:
                    continue
                found[final] = depth
                for link in extract(final, html):
                    if link is None or link in seen:
                        continue
                    p = urlsplit(link)
                    if p.netloc != host or p.path.startswith("/private/"):
                        continue
                    seen.add(link)
                    nxt.append(link)
            level, depth = nxt, depth + 1
    return found, broken


# ------------------------------------------------------------------------------ model

def item(site: Site, i: int) -> bytes:
    status, _, body = site.response(f"/cat{i % 20}/item{i}.html", HOST)
    assert status == 200
    return body


def test_deterministic_for_pages_and_seed() -> None:
    a, b, c = Site(300, seed=7), Site(300, seed=7), Site(300, seed=8)
    for i in (0, 1, 45, 299):
        assert item(a, i) == item(b, i)
    assert a.response("/", HOST) == b.response("/", HOST)
    assert a.expected() == b.expected()
    differs = [a.links(f"/cat{i % 20}/item{i}.html") != c.links(f"/cat{i % 20}/item{i}.html")
               for i in range(20)]
    assert all(differs)


def test_pages_are_realistic_html() -> None:
    site = Site(300, seed=7)
    for i in range(300):
        body = item(site, i)
        assert 8_000 <= len(body) <= 14_000, (i, len(body))
        assert 25 <= body.count(b"<a href") <= 40, i
        text = body.decode()
        assert text.startswith("<!DOCTYPE html>")
        assert '<meta charset="utf-8">' in text
        assert f"<title>Item {i} — Category {i % 20}</title>" in text
    titles = {re.search(rb"<title>(.*?)</title>", item(site, i)).group(1)  # type: ignore[union-attr]
              for i in range(300)}
    assert len(titles) == 300


def test_every_link_form_appears() -> None:
    site = Site(300, seed=7)
    hrefs = [h for i in range(300) for h, _ in site.links(f"/cat{i % 20}/item{i}.html", HOST)]
    joined = "\n".join(hrefs)
    for needle in ("HTTP://127.0.0.1:8000/", "//127.0.0.1:8000/", "/../cat", "/./item",
                   "%3", "../cat", "./item", "#reviews", "&amp;page=2", "mailto:", "tel:",
                   "javascript:", "http://127.0.0.2:8000/ext/e", "example.invalid", "/go/",
                   "/private/p", "/missing/m"):
        assert needle in joined, needle
    assert any(h != h.strip() for h in hrefs)
    assert any(re.fullmatch(r"item\d+\.html", h) for h in hrefs)
    bases = [i for i in range(300) if b"<base href=" in item(site, i)]
    assert 1 <= len(bases) <= 20


@pytest.mark.parametrize(("pages", "seed"), [(300, 7), (1, 0), (8, 1), (21, 2), (150, 9)])
def test_link_model_matches_the_html(pages: int, seed: int) -> None:
    """What links() says each page links to is what a parser finds in the page."""
    site = Site(pages, seed)
    paths = ["/", "/tags/?name=t3", "/tags/?name=t3&page=2"]
    paths += [f"/cat{i % 20}/item{i}.html" for i in range(pages)]
    for path in paths:
        html = site.response(path, HOST)[2].decode()
        parsed = extract(BASE + path, html)
        model = [url for _, url in site.links(path, HOST)]
        assert Counter(parsed) == Counter(model), path


def test_tiny_sites_are_consistent() -> None:
    for pages in (1, 2, 7, 8, 19, 20, 21):
        site = Site(pages, seed=pages)
        exp = site.expected(BASE)
        assert len([u for u in exp if "/item" in u]) == pages
        for url in exp:
            assert site.response(url[len(BASE):], HOST)[0] == 200, url
    with pytest.raises(ValueError):
        Site(0)


def test_expected_shape_and_depth_filter() -> None:
    site = Site(300, seed=7)
    exp = site.expected(BASE)
    assert exp[BASE + "/"] == 0
    assert all(exp[f"{BASE}/cat{j % 20}/item{j}.html"] == 1 for j in range(30))
    assert exp[f"{BASE}/tags/?name=t3"] == 1
    assert f"{BASE}/tags/?name=t3&page=2" in exp
    assert len([u for u in exp if "/item" in u]) == 300
    assert not any("/private/" in u or "/missing/" in u or "/go/" in u for u in exp)
    assert not any("127.0.0.2" in u for u in exp)
    assert set(site.expected(BASE, depth=1).values()) == {0, 1}
    anyscope = site.expected(BASE, scope="any")
    ext = {u for u in anyscope if u.startswith("http://127.0.0.2:8000/ext/e")}
    assert ext and set(anyscope) - ext == set(exp)
    assert all(u.startswith(BASE + "/missing/m") for u in site.broken_urls(BASE))
    static = site.expected(BASE, static=True)
    assert not any("/tags/" in u for u in static)
    assert any("/go/" in u for u in site.broken_urls(BASE, static=True))


def test_robots_and_serving_rules() -> None:
    site = Site(300, seed=7)
    status, headers, body = site.response("/robots.txt", HOST)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert body.decode() == ("User-agent: *\nDisallow: /private/\nAllow: /\n\n"
                             f"Sitemap: {BASE}/sitemap.xml\n")
    assert site.forbidden("/private/p3.html") and not site.forbidden("/cat3/item3.html")
    assert site.response("/private/p3.html", HOST)[0] == 200  # if a crawler ignores robots
    sitemap = site.response("/sitemap.xml", HOST)
    assert sitemap[1]["Content-Type"] == "application/xml"
    assert f"<loc>{BASE}/cat5/item45.html</loc>".encode() in sitemap[2]
    assert b"name=t3&amp;page=2" in sitemap[2]
    plain = site.response("/cat5/item45.html", HOST)
    for variant in ("/cat%35/item%34%35.html", "/cat3/../cat5/item45.html",
                    "/cat5/./item45.html", "/../cat5/item45.html"):
        assert site.response(variant, HOST) == plain, variant
    for missing in ("/missing/m1.html", "/cat4/item45.html", "/cat5/item045.html",
                    "/cat5/item45.html?x=1", "/cat0/item300.html", "/tags/?name=t30",
                    "/tags/", "/go/8", "/go/307", "/ext/e10.html", "/nope"):
        assert site.response(missing, HOST)[0] == 404, missing
    assert site.response("/go/107", HOST)[:2] == (301, {
        "Location": "/cat7/item107.html", "Content-Type": "text/html; charset=utf-8"})


def test_write_files(tmp_path: Path) -> None:
    site = Site(40, seed=1)
    n = site.write_files(tmp_path, BASE)
    assert n == 1 + 40 + 50 + 10 + 2
    assert (tmp_path / "index.html").read_bytes() == site.response("/", HOST)[2]
    assert (tmp_path / "cat5/item25.html").read_bytes() == item(site, 25)
    assert b"/tags/" not in (tmp_path / "sitemap.xml").read_bytes()


# ----------------------------------------------------------------------- real server

async def _get(url: str | URL, **kw: object) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:  # type: ignore[arg-type]
        return r.status, await r.read(), r


def test_server_serves_every_expected_page(testsite: ServerThread) -> None:
    expected = testsite.site.expected(testsite.base_url)

    async def main() -> dict[str, int]:
        sem = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as s:
            async def one(u: str) -> tuple[str, int]:
                async with sem, s.get(u, allow_redirects=False) as r:
                    await r.read()
                    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
                    return u, r.status
            return dict(await asyncio.gather(*(one(u) for u in expected)))

    statuses = asyncio.run(main())
    assert set(statuses.values()) == {200}
    assert testsite.server.requests == len(expected)


def test_ground_truth_matches_an_independent_crawl(testsite: ServerThread) -> None:
    found, broken = asyncio.run(bfs_crawl(testsite.base_url))
    site = testsite.site
    assert found == site.expected(testsite.base_url)
    assert broken == site.broken_urls(testsite.base_url)
    assert not any(e.raw_path.startswith("/private/") for e in testsite.server.log)


def test_percent_encoded_redirect_and_404(testsite: ServerThread) -> None:
    base = testsite.base_url
    status, plain, _ = asyncio.run(_get(f"{base}/cat3/item43.html"))
    assert status == 200
    status, body, _ = asyncio.run(_get(URL(f"{base}/cat%33/item%34%33.html", encoded=True)))
    assert status == 200 and body == plain
    assert testsite.server.log[-1].raw_path == "/cat%33/item%34%33.html"
    status, body, resp = asyncio.run(_get(f"{base}/go/7"))
    assert status == 200 and str(resp.url) == f"{base}/cat7/item7.html"
    assert resp.history[0].status == 301
    assert [(e.raw_path, e.status) for e in testsite.server.log[-2:]] == [
        ("/go/7", 301), ("/cat7/item7.html", 200)]
    assert asyncio.run(_get(f"{base}/missing/m3.html"))[0] == 404
    log = testsite.server.log[-1]
    assert log.host == f"127.0.0.1:{testsite.port}" and log.method == "GET"


def test_other_host_on_same_port(testsite: ServerThread) -> None:
    other = testsite.server.other_base_url
    if other is None:
        pytest.skip("127.0.0.2 cannot be bound here")
    assert other == f"http://127.0.0.2:{testsite.port}"
    ext = [u for u in testsite.site.expected(testsite.base_url, scope="any")
           if u.startswith(other)]
    assert ext
    for u in ext:
        assert asyncio.run(_get(u))[0] == 200
    assert testsite.server.log[-1].host == f"127.0.0.2:{testsite.port}"


def test_latency_and_peak_concurrency(site300: Site) -> None:
    with ServerThread(site300, latency_ms=200) as srv:
        async def main() -> float:
            t0 = time.monotonic()
            async with aiohttp.ClientSession() as s:
                async def one(i: int) -> None:
                    async with s.get(f"{srv.base_url}/cat{i}/item{i}.html") as r:
                        assert r.status == 200
                        await r.read()
                await asyncio.gather(*(one(i) for i in range(5)))
            return time.monotonic() - t0

        elapsed = asyncio.run(main())
        server = srv.server
        assert 0.2 <= elapsed < 1.5  # concurrent, not 5 x 200 ms
        assert server.peak_concurrency == 5
        assert server.peak_concurrency_by_host == {f"127.0.0.1:{srv.port}": 5}
        assert all(e.end - e.start >= 0.19 for e in server.log)
        assert len(server.log) == server.requests == 5


def test_bind_error_is_a_clear_oserror(testsite: ServerThread) -> None:
    async def main() -> None:
        async with TestSiteServer(testsite.site, port=testsite.port):
            pass

    with pytest.raises(OSError) as info:
        asyncio.run(main())
    assert info.value.errno == errno.EADDRINUSE
    assert info.value.strerror == "Address already in use"
    assert str(testsite.port) in str(info.value)
    with pytest.raises(OSError), ServerThread(testsite.site, port=testsite.port):
        pass


def test_server_process_and_cli() -> None:
    with ServerProcess(pages=50, seed=3) as proc:
        assert proc.port > 0
        status, body, _ = asyncio.run(_get(f"{proc.base_url}/cat5/item5.html"))
        assert status == 200
        assert body == Site(50, 3).response("/cat5/item5.html", f"127.0.0.1:{proc.port}")[2]
        child = proc.proc
    assert child is not None and child.returncode is not None
    out = subprocess.run([sys.executable, "-m", "loopcrawl.testsite", "--pages", "50",
                          "--seed", "3", "--port", "8123", "--expected"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.splitlines() == sorted(Site(50, 3).expected("http://127.0.0.1:8123"))
