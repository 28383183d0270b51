"""Every command-line option, passed as a user passes it, and its effect seen
where the user would see it: at the server (what arrived, with which
headers, when) and in the output file. Each option's value is put at a
boundary, so the test fails if the option is dropped on the way to the
crawl or its limit moves by one.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .conftest import Hit, PageServer
from .test_spider import forward_proxy  # noqa: F401  (a fixture)


def loopcrawl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopcrawl", *args], capture_output=True,
                          text=True, timeout=timeout)


def crawl(tmp_path: Path, url: str, *options: str, code: int = 0) -> dict[str, dict[str, Any]]:
    """``loopcrawl crawl URL -o FILE --quiet OPTIONS``: the records by path
    (``code``: the exit code expected; 3 when every request failed)."""
    out = tmp_path / "out.jsonl"
    out.unlink(missing_ok=True)
    r = loopcrawl("crawl", url, "-o", str(out), "--quiet", *options)
    assert r.returncode == code, r.stderr
    origin = url[: url.index("/", 8)]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    got = {rec["url"].removeprefix(origin): rec for rec in recs}
    assert len(got) == len(recs), "a URL produced two records"
    return got


def fetched(server: PageServer) -> list[str]:
    return [p for p in server.paths() if p != "/robots.txt"]


def sent(hit: Hit) -> dict[str, str]:
    return {k.lower(): v for k, v in hit.headers.items()}


# -- session ---------------------------------------------------------------------

def test_header_user_agent_and_auth_reach_the_server(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/robots.txt", content_type="text/plain",
              body="User-agent: probe-bot\nDisallow: /for-others\n")
    pages.add("/", links=["/a", "/for-others"])
    pages.add("/a")
    pages.add("/for-others")
    got = crawl(tmp_path, pages.url + "/", "-H", "X-One: 1", "--header", "X-Two:  two words ",
                "--user-agent", "probe-bot/2.0", "--auth", "user:p:w")
    assert got["/for-others"]["error"] == "robots_denied"  # the agent's own robots group
    assert sorted(fetched(pages)) == ["/", "/a"]
    auth = "Basic " + base64.b64encode(b"user:p:w").decode()
    for hit in pages.log:
        h = sent(hit)
        assert h["user-agent"] == "probe-bot/2.0", hit
        if hit.path != "/robots.txt":
            assert (h["x-one"], h["x-two"], h["authorization"]) == ("1", "two words", auth)


@pytest.mark.parametrize("keep", [True, False])
def test_no_cookies(pages: PageServer, tmp_path: Path, keep: bool) -> None:
    pages.add("/", links=["/a"], headers={"Set-Cookie": "sid=abc; Path=/"})
    pages.add("/a")
    crawl(tmp_path, pages.url + "/", "--concurrency", "1", *([] if keep else ["--no-cookies"]))
    (a,) = [h for h in pages.log if h.path == "/a"]
    assert ("sid=abc" in sent(a).get("cookie", "")) is keep


def test_proxy(pages: PageServer, tmp_path: Path,
               forward_proxy: tuple[str, Path]) -> None:  # noqa: F811
    """Every request goes through the proxy: its log names the page."""
    import time

    proxy, log = forward_proxy
    pages.add("/via-proxy")
    got = crawl(tmp_path, pages.url + "/via-proxy", "--proxy", proxy, "--ignore-robots")
    assert got["/via-proxy"]["status"] == 200
    deadline = time.monotonic() + 5
    while f"127.0.0.1:{pages.port}/via-proxy" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-1000:]
        time.sleep(0.05)


def test_proxy_not_there_fails_the_request(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/")
    got = crawl(tmp_path, pages.url + "/", "--proxy", "http://127.0.0.1:1", "--retries", "0",
                "--ignore-robots", code=3)
    assert got["/"]["error"] == "proxy_error" and pages.log == []


# -- politeness and time -----------------------------------------------------------

def test_delay(pages: PageServer, tmp_path: Path) -> None:
    links = [f"/p{i}" for i in range(5)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)
    crawl(tmp_path, pages.url + "/", "--delay", "0.3", "--per-host", "4")
    # Not from / (the first request also opens the connection, so the server
    # sees it late); the others are counted from when the crawler sends,
    # which the server sees a few milliseconds later, not always by as many.
    starts = sorted(h.start for h in pages.log if h.path.startswith("/p"))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 4 and min(gaps) >= 0.27, gaps
    assert max(gaps) < 0.45, gaps


@pytest.mark.parametrize(("option", "value"), [("--per-host", 3), ("--concurrency", 2)])
def test_per_host_and_concurrency(pages: PageServer, tmp_path: Path, option: str,
                                  value: int) -> None:
    links = [f"/p{i}" for i in range(12)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=0.15)
    other = "--concurrency" if option == "--per-host" else "--per-host"
    crawl(tmp_path, pages.url + "/", option, str(value), other, "8")
    assert pages.peak == value


def test_timeout(pages: PageServer, tmp_path: Path) -> None:
    """--timeout 0.5 ends a page that answers after 3 s (and bounds the read
    and connect timeouts too)."""
    pages.add("/", links=["/slow"])
    pages.add("/slow", delay=3)
    got = crawl(tmp_path, pages.url + "/", "--timeout", "0.5", "--retries", "0")
    assert got["/slow"]["error"] == "timeout"
    assert got["/slow"]["elapsed_ms"] < 2000


@pytest.mark.parametrize("retries", [0, 2])
def test_retries(pages: PageServer, tmp_path: Path, retries: int) -> None:
    pages.add("/", links=["/err"])
    pages.add("/err", status=500)
    got = crawl(tmp_path, pages.url + "/", "--retries", str(retries))
    assert got["/err"]["status"] == 500
    assert pages.paths().count("/err") == retries + 1


def test_ignore_robots(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /\n", content_type="text/plain")
    pages.add("/", links=["/a"])
    pages.add("/a")
    got = crawl(tmp_path, pages.url + "/", "--ignore-robots")
    assert {rec["status"] for rec in got.values()} == {200} and len(got) == 2
    assert "/robots.txt" not in pages.paths()


# -- what is followed --------------------------------------------------------------

def test_depth(pages: PageServer, tmp_path: Path) -> None:
    for i in range(4):
        pages.add(f"/d{i}", links=[f"/d{i + 1}"])
    got = crawl(tmp_path, pages.url + "/d0", "--depth", "2")
    assert sorted(got) == ["/d0", "/d1", "/d2"]


def test_max_pages(pages: PageServer, tmp_path: Path) -> None:
    links = [f"/p{i}" for i in range(10)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)
    got = crawl(tmp_path, pages.url + "/", "--max-pages", "4")
    assert len(got) == 4 and len(fetched(pages)) == 4


def test_scope_allow_and_deny() -> None:
    """Three hosts on one server: --scope any reaches the other host;
    --allow and --deny filter by regex."""
    with PageServer(hosts=("127.0.0.1", "127.0.0.2")) as server, \
            __import__("tempfile").TemporaryDirectory() as d:
        tmp = Path(d)
        other = server.url.replace("127.0.0.1", "127.0.0.2")
        server.add("/", links=["/keep/1", "/drop/1", other + "/x"])
        for p in ("/keep/1", "/drop/1", "/x"):
            server.add(p)
        got = crawl(tmp, server.url + "/")
        assert sorted(got) == ["/", "/drop/1", "/keep/1"]
        got = crawl(tmp, server.url + "/", "--scope", "any", "--deny", "/drop/")
        assert sorted(got) == ["/", "/keep/1", other + "/x"]
        got = crawl(tmp, server.url + "/", "--allow", "/keep/")
        assert sorted(got) == ["/", "/keep/1"]


def test_sitemaps(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/robots.txt", content_type="text/plain",
              body=f"User-agent: *\nSitemap: {pages.url}/sm.xml.gz\n")
    urls = "".join(f"<url><loc>{pages.url}/only-in-sitemap/{i}</loc></url>" for i in range(3))
    pages.add("/sm.xml.gz", content_type="application/gzip", body=gzip.compress(
        f'<?xml version="1.0"?><urlset>{urls}</urlset>'.encode()))
    pages.add("/")
    for i in range(3):
        pages.add(f"/only-in-sitemap/{i}")
    assert sorted(crawl(tmp_path, pages.url + "/")) == ["/"]
    got = crawl(tmp_path, pages.url + "/", "--sitemaps")
    assert {f"/only-in-sitemap/{i}" for i in range(3)} <= set(got)
    assert got["/sm.xml.gz"]["links"] == 3


# -- limits, each at its boundary ----------------------------------------------------

def test_max_response_size(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/at", "/over"])
    pages.add("/at", body=b"x" * 4000, content_type="application/octet-stream")
    pages.add("/over", body=b"x" * 4001, content_type="application/octet-stream")
    body = pages.routes["/"].body
    got = crawl(tmp_path, pages.url + "/", "--max-response-size", "4000")
    assert len(body) < 4000
    assert (got["/at"]["status"], got["/at"]["bytes"]) == (200, 4000)
    assert got["/over"]["error"] == "too_large"


def test_max_redirects(pages: PageServer, tmp_path: Path) -> None:
    for name, hops in (("ok", 2), ("over", 3)):
        for i in range(hops):
            pages.add(f"/{name}/{i}", status=302, headers={"Location": f"/{name}/{i + 1}"})
        pages.add(f"/{name}/{hops}")
    pages.add("/", links=["/ok/0", "/over/0"])
    got = crawl(tmp_path, pages.url + "/", "--max-redirects", "2")
    assert got["/ok/0"]["status"] == 200 and got["/ok/0"]["final_url"].endswith("/ok/2")
    assert got["/over/0"]["error"] == "too_many_redirects"


@pytest.mark.parametrize("option", ["--max-links-per-page", "--max-queued"])
def test_max_links_per_page_and_max_queued(pages: PageServer, tmp_path: Path,
                                           option: str) -> None:
    """Three of the page's five links: the first three a page gives, or the
    three its links find room for in the queue (the seed left it)."""
    links = [f"/p{i}" for i in range(5)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)
    got = crawl(tmp_path, pages.url + "/", option, "3")
    assert sorted(got) == ["/", "/p0", "/p1", "/p2"]


def test_max_url_length(pages: PageServer, tmp_path: Path) -> None:
    limit = 50
    at = "/" + "a" * (limit - len(pages.url) - 1)
    over = "/" + "b" * (limit - len(pages.url))
    pages.add("/", links=[at, over])
    pages.add(at)
    pages.add(over)
    got = crawl(tmp_path, pages.url + "/", "--max-url-length", str(limit))
    assert sorted(got) == sorted(["/", at])


def test_max_repeated_segments(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/a/a/x", "/b/b/b"])  # 2 and 3 times
    pages.add("/a/a/x")
    pages.add("/b/b/b")
    got = crawl(tmp_path, pages.url + "/", "--max-repeated-segments", "2")
    assert sorted(got) == ["/", "/a/a/x"]


def test_max_query_variants(pages: PageServer, tmp_path: Path) -> None:
    variants = [f"/q?v={i}" for i in range(5)]
    pages.add("/", links=variants)
    for v in variants:
        pages.add(v)
    got = crawl(tmp_path, pages.url + "/", "--max-query-variants", "2", "--concurrency", "1")
    assert len([p for p in fetched(pages) if p.startswith("/q?")]) == 2
    assert [rec.get("error") for rec in got.values()].count("trap") == 3


def test_max_pages_per_host(pages: PageServer, tmp_path: Path) -> None:
    links = [f"/p{i}" for i in range(5)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)
    got = crawl(tmp_path, pages.url + "/", "--max-pages-per-host", "3", "--concurrency", "1")
    assert len(fetched(pages)) == 3
    assert [rec.get("error") for rec in got.values()].count("trap") == 3


# -- loopcrawl run -s: booleans, numbers, JSON ------------------------------------

SPIDER = textwrap.dedent('''
    from loopcrawl import Spider

    class Probe(Spider):
        start_urls = [{url!r}]

        def parse(self, response):
            yield {{"url": response.url, "status": response.status}}
            yield from response.follow_all(css="a")
''')


@pytest.mark.parametrize(
    ("overrides", "expect_robots", "expect_cookie"),
    [
        (["-s", "obey_robots=false", "-s", "cookies=no"], False, False),
        (["-s", "obey_robots=1", "-s", "cookies=on"], True, True),
    ],
)
def test_run_settings_booleans_and_json(pages: PageServer, tmp_path: Path,
                                        overrides: list[str], expect_robots: bool,
                                        expect_cookie: bool) -> None:
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /private\n", content_type="text/plain")
    pages.add("/", links=["/private", "/a"], headers={"Set-Cookie": "sid=abc; Path=/"})
    pages.add("/private")
    pages.add("/a")
    spider = tmp_path / "probe.py"
    spider.write_text(SPIDER.format(url=pages.url + "/"))
    out = tmp_path / "items.jsonl"
    r = loopcrawl("run", str(spider), "-o", str(out), "--quiet", *overrides,
                  "-s", 'headers={"X-Json": "yes", "X-N": 2}', "-s", "per_host=1")
    assert r.returncode == 0, r.stderr
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(items) == (2 if expect_robots else 3)
    assert ("/robots.txt" in pages.paths()) is expect_robots
    assert ("/private" in pages.paths()) is not expect_robots
    assert pages.peak == 1
    for hit in pages.log:
        if hit.path != "/robots.txt":
            assert (sent(hit)["x-json"], sent(hit)["x-n"]) == ("yes", "2")
    (a,) = [h for h in pages.log if h.path == "/a"]
    assert ("sid=abc" in sent(a).get("cookie", "")) is expect_cookie


@pytest.mark.parametrize("bad", ["obey_robots=maybe", 'headers=["a"]', "headers={", "depth=x",
                                 "nonsense=1"])
def test_run_bad_settings_are_one_line(tmp_path: Path, bad: str) -> None:
    spider = tmp_path / "probe.py"
    spider.write_text(SPIDER.format(url="http://127.0.0.1:1/"))
    r = loopcrawl("run", str(spider), "-s", bad, "--quiet")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("loopcrawl: error: ") and "Traceback" not in r.stderr
