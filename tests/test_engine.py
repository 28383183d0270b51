"""The engine against small real servers: robots, limits, politeness, failures."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web

from loopcrawl import CrawlStats, Failure, FetchRecord, Request, Response, Settings, Spider, crawl
from loopcrawl.core.engine import Crawler
from loopcrawl.errors import ConfigError, OutputError
from loopcrawl.frontier import MemoryFrontier
from loopcrawl.outputs import JsonlWriter, Output

from .conftest import PageServer
from .helpers import by_url, run


def test_follows_links_once_each(pages: PageServer) -> None:
    pages.add("/", links=["/a", "/b", "b", "./a#x", "/a?", "#top", "mailto:x@y.z"])
    pages.add("/a", links=["/", "/b", "/c"])
    pages.add("/b", links=["/c", "/a"])
    pages.add("/c", title="  The   C page ")
    recs, stats = run(pages.url + "/")
    got = by_url(recs)
    assert set(got) == {pages.url + p for p in ("/", "/a", "/b", "/c")}
    assert got[pages.url + "/c"].title == "The C page"
    assert got[pages.url + "/"].links == 2  # /a and /b, however written
    assert sorted(p for p in pages.paths() if p != "/robots.txt") == ["/", "/a", "/b", "/c"]
    assert stats.ok == 4


def test_robots_disallow_is_obeyed_and_recorded(pages: PageServer) -> None:
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /private/\nAllow: /private/ok\n",
              content_type="text/plain")
    pages.add("/", links=["/private/secret", "/private/ok", "/public"])
    pages.add("/private/secret")
    pages.add("/private/ok")
    pages.add("/public")
    recs, stats = run(pages.url + "/")
    got = by_url(recs)
    assert got[pages.url + "/private/secret"].error == "robots_denied"
    assert got[pages.url + "/private/ok"].status == 200
    assert "/private/secret" not in pages.paths()
    assert pages.paths().count("/robots.txt") == 1
    assert stats.errors == {"robots_denied": 1}


def test_robots_agent_groups_and_wildcards(pages: PageServer) -> None:
    pages.add("/robots.txt", content_type="text/plain", body=(
        "User-agent: otherbot\nDisallow: /\n\n"
        "User-agent: loopcrawl\nDisallow: /*.pdf$\nDisallow: /tmp\n"))
    pages.add("/", links=["/doc.pdf", "/doc.pdf?x=1", "/tmp/x", "/tmpx", "/ok"])
    for p in ("/doc.pdf", "/doc.pdf?x=1", "/tmp/x", "/tmpx", "/ok"):
        pages.add(p)
    recs, _ = run(pages.url + "/")
    denied = {r.url.removeprefix(pages.url) for r in recs if r.error == "robots_denied"}
    assert denied == {"/doc.pdf", "/tmp/x", "/tmpx"}


def test_ignore_robots(pages: PageServer) -> None:
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /\n", content_type="text/plain")
    pages.add("/", links=["/a"])
    pages.add("/a")
    recs, _ = run(pages.url + "/", obey_robots=False)
    assert {r.status for r in recs} == {200}
    assert "/robots.txt" not in pages.paths()


@pytest.mark.parametrize("status", [404, 403, 410])
def test_robots_4xx_allows_everything(pages: PageServer, status: int) -> None:
    pages.add("/robots.txt", status=status, body="User-agent: *\nDisallow: /\n")
    pages.add("/", links=["/a"])
    pages.add("/a")
    recs, _ = run(pages.url + "/")
    assert [r.status for r in recs] == [200, 200]


def test_robots_5xx_disallows_then_retries(pages: PageServer) -> None:
    pages.add("/robots.txt", status=503, body="down")
    pages.add("/")
    recs, _ = run(pages.url + "/", retries=2, retry_backoff=0.05, robots_error_retry=0.1)
    assert recs[0].error == "robots_unreachable"
    assert recs[0].message == "robots.txt answered 503"
    assert "/" not in pages.paths()
    assert pages.paths().count("/robots.txt") == 3  # asked again after each window


def test_robots_crawl_delay(pages: PageServer) -> None:
    pages.add("/robots.txt", body="User-agent: *\nCrawl-delay: 0.2\n", content_type="text/plain")
    pages.add("/", links=["/a", "/b", "/c", "/d"])
    for p in "abcd":
        pages.add("/" + p)
    run(pages.url + "/", per_host=4)
    # From the second page on (the first opens the connection); 30 ms of
    # slack for when the server sees a request after the crawler sends it.
    starts = sorted(h.start for h in pages.log if h.path not in ("/robots.txt", "/"))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3 and min(gaps) >= 0.17, gaps


def test_per_host_limit_measured_at_the_server(pages: PageServer) -> None:
    links = [f"/p{i}" for i in range(30)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=0.03)
    recs, _ = run(pages.url + "/", concurrency=50, per_host=2)
    assert len(recs) == 31
    assert pages.peak == 2


def test_global_concurrency_and_delay(pages: PageServer) -> None:
    links = [f"/p{i}" for i in range(8)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)
    run(pages.url + "/", per_host=8, delay=0.05)
    # From the second page on: the first request also opens the connection,
    # so the server sees it late and the next gap looks short.
    starts = sorted(h.start for h in pages.log if h.path.startswith("/p"))
    assert len(starts) == 8
    assert all(b - a >= 0.035 for a, b in itertools.pairwise(starts))


def test_depth_limit(pages: PageServer) -> None:
    for i in range(6):
        pages.add(f"/d{i}", links=[f"/d{i + 1}"])
    recs, stats = run(pages.url + "/d0", depth=3)
    assert sorted(r.url.removeprefix(pages.url) for r in recs) == ["/d0", "/d1", "/d2", "/d3"]
    assert [r.depth for r in sorted(recs, key=lambda r: r.url)] == [0, 1, 2, 3]
    assert stats.skipped["depth"] == 1


def test_max_pages_is_exact(pages: PageServer) -> None:
    links = [f"/p{i}" for i in range(40)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, links=links)
    recs, _ = run(pages.url + "/", max_pages=10, concurrency=8)
    assert len(recs) == 10
    assert len([p for p in pages.paths() if p != "/robots.txt"]) == 10


def test_pages_not_fetched_spend_no_budget(pages: PageServer) -> None:
    """A page robots.txt forbids, or a trap stops, is one record, acked, but
    not a page of ``max_pages`` and no back-off for its host: with a budget
    of 2, the pages after three of them are fetched."""
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /private/\n",
              content_type="text/plain")
    pages.add("/a")
    pages.add("/v?q=1")
    paths = ["/private/1", "/private/2", "/v?q=1", "/v?q=2", "/a"]
    frontier = MemoryFrontier(lease_ttl=30.0)  # an ack must name its lease
    recs: list[FetchRecord] = []
    c = Crawler(Settings(seeds=tuple(pages.url + p for p in paths), max_pages=2, concurrency=1,
                         per_host=1, depth=0, max_query_variants=1, timeout=10.0),
                frontier=frontier, on_record=recs.append)
    stats = asyncio.run(c.run())
    assert [(r.url.removeprefix(pages.url), r.status, r.error) for r in recs] == [
        ("/private/1", None, "robots_denied"), ("/private/2", None, "robots_denied"),
        ("/v?q=1", 200, None), ("/v?q=2", None, "trap"), ("/a", 200, None)]
    assert pages.paths() == ["/robots.txt", "/v?q=1", "/a"] and stats.records == 5
    st = asyncio.run(frontier.statistics())
    assert (st.done, st.leased, st.queued) == (5, 0, 0)
    assert c.scheduler is not None
    slot = c.scheduler.gate.slot(pages.url.removeprefix("http://"))
    assert slot is not None and slot.throttled_until == 0.0


def test_every_kind_of_record_is_acked_once_by_its_lease() -> None:
    """Whatever ends a request (a page, an HTTP error, robots.txt forbidding
    or unreachable, a trap, a timeout) it is one record and one ack, of its
    own lease (a frontier with leases refuses any other)."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/robots.txt":
            if request.host.startswith("127.0.0.2"):
                return web.Response(status=503)
            return web.Response(text="User-agent: *\nDisallow: /private\n")
        if request.path == "/slow":
            await asyncio.sleep(1.0)
        status = 404 if request.path == "/gone" else 200
        return web.Response(status=status, text="<title>t</title>", content_type="text/html")

    with PageServer(handler=handler, hosts=("127.0.0.1", "127.0.0.2")) as server:
        other = server.url.replace("127.0.0.1", "127.0.0.2")
        paths = ["/ok", "/gone", "/private", "/v?q=1", "/v?q=2", "/slow"]
        want = [None, "http_status", "robots_denied", None, "trap", "timeout",
                "robots_unreachable"]
        frontier = MemoryFrontier(lease_ttl=30.0)
        recs: list[FetchRecord] = []
        settings = Settings(seeds=(*(server.url + p for p in paths), other + "/x"), retries=0,
                            depth=0, max_query_variants=1, robots_error_retry=30.0,
                            timeout=0.5, read_timeout=0.5)
        asyncio.run(Crawler(settings, frontier=frontier, on_record=recs.append).run())
    got = by_url(recs)
    assert [got[u].error for u in settings.seeds] == want
    assert all(r.elapsed_ms > 0 for r in recs), [(r.url, r.elapsed_ms) for r in recs]
    # A record without a page takes its time from the start to the failure, in ms:
    # the read timeout (0.5 s) cut /slow before its answer (1 s).
    assert 500 <= got[server.url + "/slow"].elapsed_ms < 1500
    st = asyncio.run(frontier.statistics())
    assert (st.done, st.leased, st.queued) == (7, 0, 0)


def test_a_bug_on_one_request_is_its_record_and_the_crawl_goes_on(pages: PageServer) -> None:
    """A request the engine fails on with an unexpected exception (here a
    spider's cookies that are no mapping: the spider's bug) is one record,
    ``internal_error`` with the exception's repr and no time taken, told to
    the errback and acked by its own lease; it is a page of the budget, its
    host gets no back-off, and the crawl goes on."""
    for p in ("/b", "/c"):
        pages.add(p)
    base = pages.url
    failures: list[Failure] = []
    recorded: dict[str, float] = {}

    class S(Spider):
        def start_requests(self) -> Any:
            yield Request(base + "/a", cookies=42)  # type: ignore[arg-type]
            yield Request(base + "/b")
            yield Request(base + "/c")

        def parse(self, response: Response) -> None:
            return None

        def errback(self, failure: Failure) -> None:
            failures.append(failure)

    def on_record(rec: FetchRecord) -> None:
        recs.append(rec)
        recorded[rec.url] = time.monotonic()

    frontier = MemoryFrontier(lease_ttl=30.0)
    recs: list[FetchRecord] = []
    t0 = time.time()
    stats = crawl(Settings(timeout=10.0, obey_robots=False, max_pages=2, concurrency=1),
                  spider=S(), frontier=frontier, on_record=on_record)
    bug = by_url(recs)[base + "/a"]
    assert (bug.error, bug.status, bug.elapsed_ms) == ("internal_error", None, 0.0)
    assert bug.message is not None and bug.message.startswith("TypeError(")
    assert t0 <= bug.fetched_at <= time.time()
    assert [r.url for r in recs] == [base + "/a", base + "/b"] and pages.paths() == ["/b"]
    assert stats.errors == {"internal_error": 1}
    assert [(f.request.url, f.kind, f.message) for f in failures] == [
        (base + "/a", "internal_error", bug.message)]
    assert pages.log[0].start - recorded[base + "/a"] < 0.5  # no back-off (1 s would show)
    st = asyncio.run(frontier.statistics())
    assert (st.done, st.leased) == (2, 0)


def test_a_host_that_fails_spends_budget_and_gets_no_back_off() -> None:
    """A page whose robots.txt cannot be had (503) failed because of its host,
    as a refused connection does: it is a page of ``max_pages`` (our own
    refusals, robots.txt forbidding or a trap, are not), and its host gets no
    back-off from it (robots.txt's window holds its pages instead)."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/robots.txt" and request.host.startswith("127.0.0.2"):
            return web.Response(status=503)
        return web.Response(text="<title>t</title>", content_type="text/html")

    with PageServer(handler=handler, hosts=("127.0.0.1", "127.0.0.2")) as server:
        other = server.url.replace("127.0.0.1", "127.0.0.2")
        recs: list[FetchRecord] = []
        c = Crawler(Settings(seeds=(other + "/x", server.url + "/a", server.url + "/b"),
                             retries=0, depth=0, max_pages=2, concurrency=1, per_host=1,
                             robots_error_retry=30.0, timeout=10.0), on_record=recs.append)
        asyncio.run(c.run())
    assert [(r.url, r.error) for r in recs] == [(other + "/x", "robots_unreachable"),
                                                (server.url + "/a", None)]
    assert c.scheduler is not None
    slot = c.scheduler.gate.slot(other.removeprefix("http://"))
    assert slot is not None and slot.throttled_until == 0.0


@pytest.mark.parametrize("fails", ["refused", "500"])
def test_a_fetch_that_fails_is_retried_then_recorded_as_one_page(
    pages: PageServer, caplog: pytest.LogCaptureFixture, fails: str
) -> None:
    """A refused connection (a transient error) or a 500 is retried, the log
    says why; then it is a record with the error's words. However many
    attempts, it is one page of ``max_pages`` (a budget of 2: /b is never
    fetched), and its host gets no back-off from it."""
    import socket

    if fails == "refused":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            host = f"127.0.0.1:{s.getsockname()[1]}"
        error, why = "connection_refused", "connection_refused"
    else:
        host = pages.url.removeprefix("http://")
        pages.add("/x", status=500)
        error, why = "http_status", "HTTP 500"
    pages.add("/a")
    pages.add("/b")
    x = f"http://{host}/x"
    recs: list[FetchRecord] = []
    c = Crawler(Settings(seeds=(x, pages.url + "/a", pages.url + "/b"), retries=1,
                         retry_backoff=0.01, obey_robots=False, depth=0, max_pages=2,
                         concurrency=1, per_host=1, timeout=10.0), on_record=recs.append)
    with caplog.at_level(logging.DEBUG, logger="loopcrawl"):
        stats = asyncio.run(c.run())
    got = by_url(recs)
    assert sorted(got) == sorted([x, pages.url + "/a"]) and "/b" not in pages.paths()
    assert got[x].error == error and stats.retries == 1
    message = got[x].message
    assert message is not None
    assert message == why if fails == "500" else message.startswith(f"cannot connect to {host}: ")
    assert (f"retrying {x} in 0.0 s or a little more (attempt 2 of 2): {why}"
            in [r.getMessage() for r in caplog.records])
    assert c.scheduler is not None
    slot = c.scheduler.gate.slot(host)
    assert slot is not None and slot.throttled_until == 0.0


def test_a_failing_record_hook_leaves_one_record_per_request(
    pages: PageServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises is the caller's bug: logged, never a second record
    (nor a second ack, which would end the crawl early)."""
    links = [f"/p{i}" for i in range(20)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, links=links)
    seen: list[str] = []

    def hook(rec: FetchRecord) -> None:
        seen.append(rec.url)
        if len(seen) % 3 == 0:
            raise RuntimeError("hook bug")

    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(str(out))
    stats = crawl(Settings(seeds=(pages.url + "/",)), writer=writer, on_record=hook)
    writer.close()
    urls = [json.loads(line)["url"] for line in out.read_text().splitlines()]
    assert sorted(urls) == sorted(seen) == sorted({pages.url + p for p in ["/", *links]})
    assert stats.records == 21 and stats.errors.get("internal_error") is None
    failed = [r for r in caplog.records if r.exc_info]
    assert sorted(r.getMessage() for r in failed) == sorted(
        f"on_record hook failed on {u}" for u in seen[2::3])
    assert all(r.exc_info and str(r.exc_info[1]) == "hook bug" for r in failed)


def test_scope_and_allow_deny(pages: PageServer) -> None:
    other = pages.url.replace("127.0.0.1", "127.0.0.2")
    pages.add("/", links=["/keep/1", "/drop/1", other + "/x", "http://example.invalid/"])
    pages.add("/keep/1")
    pages.add("/drop/1")
    recs, stats = run(pages.url + "/", deny=[r"/drop/"])
    assert {r.url.removeprefix(pages.url) for r in recs} == {"/", "/keep/1"}
    assert stats.skipped["scope"] == 3
    assert all(h.host.startswith("127.0.0.1") for h in pages.log)


def test_redirects_followed_and_checked(pages: PageServer) -> None:
    other = pages.url.replace("127.0.0.1", "127.0.0.2")
    pages.add("/", links=["/old", "/new", "/away", "/loop1", "/js"])
    pages.add("/old", status=301, headers={"Location": "/new"})
    pages.add("/new", title="new")
    pages.add("/away", status=302, headers={"Location": other + "/x"})
    pages.add("/loop1", status=302, headers={"Location": "/loop2"})
    pages.add("/loop2", status=302, headers={"Location": "/loop1"})
    pages.add("/js", status=302, headers={"Location": "javascript:alert(1)"})
    recs, _ = run(pages.url + "/", concurrency=1)
    got = by_url(recs)
    old, new = got[pages.url + "/old"], got[pages.url + "/new"]
    # /new is a link of / (seen before /old is fetched), so /old's hop to it
    # ends the chain: /old is recorded as its 301 and /new is fetched once.
    assert pages.paths().count("/new") == 1
    finals = [r.final_url for r in recs if r.status == 200]
    assert finals.count(pages.url + "/new") == 1
    assert (old.status, old.redirects, old.final_url) == (301, 0, pages.url + "/old")
    assert (new.status, new.title) == (200, "new")
    assert got[pages.url + "/away"].error == "redirect_refused"
    assert got[pages.url + "/loop1"].error == "redirect_loop"
    assert got[pages.url + "/js"].error == "redirect_refused"


def test_http_errors_are_records(pages: PageServer) -> None:
    pages.add("/", links=["/missing", "/gone"])
    pages.add("/gone", status=410)
    recs, stats = run(pages.url + "/")
    got = by_url(recs)
    assert got[pages.url + "/missing"].status == 404
    assert got[pages.url + "/missing"].error == "http_status"
    assert stats.errors == {"http_status": 2}


def test_hrefs_that_give_no_url_are_counted_by_kind_over_the_crawl(pages: PageServer) -> None:
    """Another scheme is ``not_http``, a broken URL ``invalid_url``; a link to
    the page itself (empty, a fragment) is neither. Counted across pages."""
    pages.add("/", links=["mailto:a@h", "javascript:void(0)", "http://[bad", "#top", "", "/b"])
    pages.add("/b", links=["mailto:b@h", "ftp://h/f", "http://[also-bad"])
    _, stats = run(pages.url + "/")
    assert (stats.skipped["not_http"], stats.skipped["invalid_url"]) == (4, 2)
    assert set(stats.skipped) == {"not_http", "invalid_url"}


def test_only_2xx_pages_are_read_and_4xx_and_5xx_are_errors(pages: PageServer) -> None:
    """A page's links are followed for 200-299 only; 300-399 (a final 3xx,
    without a Location) is neither read nor an error; from 400 on, an error
    named by its status."""
    statuses = [200, 299, 300, 399, 400, 599]
    pages.add("/", links=[f"/s{n}" for n in statuses])
    for n in statuses:
        pages.add(f"/s{n}", status=n, links=[f"/from{n}"])
        pages.add(f"/from{n}")
    recs, stats = run(pages.url + "/", retries=0)
    got = by_url(recs)
    followed = {p.removeprefix(pages.url + "/from") for p in got if "/from" in p}
    assert followed == {"200", "299"}
    for n in statuses:
        rec = got[f"{pages.url}/s{n}"]
        assert rec.status == n
        assert (rec.error, rec.message) == (("http_status", f"HTTP {n}") if n >= 400 else (None, None))
        assert rec.links == (1 if n < 300 else 0)
    assert stats.errors == {"http_status": 2}


def test_a_status_below_100_is_an_error_and_its_links_are_not_followed() -> None:
    """"HTTP/1.1 000" (three digits, which the parser takes) is no HTTP
    status: an http_status error like a 4xx, not a page fetched without one."""
    from .test_wire import RawServer

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        body = b'<title>zero</title><a href="/next">n</a>'
        w.write(b"HTTP/1.1 000 Zero\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body))
        await w.drain()

    with RawServer(answer) as srv:
        recs, stats = run(srv.url + "/", obey_robots=False, retries=0)
    assert [(r.status, r.error, r.message, r.links) for r in recs] == [
        (0, "http_status", "HTTP 0", 0)]
    assert len(srv.requests) == 1 and stats.errors == {"http_status": 1}


def test_5xx_and_429_are_retried_then_recorded(pages: PageServer) -> None:
    pages.add("/", links=["/busy"])
    pages.add("/busy", status=503, headers={"Retry-After": "0"})
    recs, stats = run(pages.url + "/", retries=2, retry_backoff=0.01)
    assert pages.paths().count("/busy") == 3
    assert by_url(recs)[pages.url + "/busy"].status == 503
    assert stats.retries == 2


def test_connection_refused_is_recorded(pages: PageServer) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    recs, stats = run(f"http://127.0.0.1:{port}/", retries=1, retry_backoff=0.01,
                      obey_robots=False)
    assert recs[0].error == "connection_refused"
    assert stats.retries == 1


def test_timeout_is_recorded(pages: PageServer) -> None:
    pages.add("/", links=["/slow"])
    pages.add("/slow", delay=3)
    recs, _ = run(pages.url + "/", timeout=0.5, retries=0)
    assert by_url(recs)[pages.url + "/slow"].error == "timeout"


def test_non_html_is_not_parsed(pages: PageServer) -> None:
    pages.add("/", links=["/data.json"])
    pages.add("/data.json", body='{"a": "<a href=/x>x</a>"}', content_type="application/json")
    recs, _ = run(pages.url + "/")
    assert by_url(recs)[pages.url + "/data.json"].links == 0
    assert "/x" not in pages.paths()


def test_base_href(pages: PageServer) -> None:
    pages.add("/", body='<html><head><base href="/sub/"></head><body>'
                        '<a href="page">p</a></body></html>')
    pages.add("/sub/page")
    recs, _ = run(pages.url + "/")
    assert {r.url.removeprefix(pages.url) for r in recs} == {"/", "/sub/page"}


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        run("notaurl")
    with pytest.raises(ConfigError):
        run("ftp://example.com/")
    with pytest.raises(ConfigError):
        run("http://127.0.0.1/", concurrency=0)


def test_throttled_host_slows_down(pages: PageServer, caplog: pytest.LogCaptureFixture) -> None:
    """Every answer 429 doubles the host's delay (0.25 s at first): the
    retries spread out. The log says each delay, and each retry's back-off
    (0.1 s doubling; the throttle's wait is the longer) and attempt, word for
    word; the last answer is the record."""
    pages.add("/", links=["/busy"])
    pages.add("/busy", status=429)
    host, busy = pages.url.removeprefix("http://"), pages.url + "/busy"
    with caplog.at_level(logging.DEBUG, logger="loopcrawl"):
        run(pages.url + "/", retries=3, retry_backoff=0.1)
    starts = [h.start for h in pages.log if h.path == "/busy"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4
    assert gaps[-1] >= 0.9  # 0.25, 0.5, 1.0 s between starts
    assert gaps[0] >= 0.2
    said = [m for r in caplog.records if r.name == "loopcrawl"
            and ("/busy" in (m := r.getMessage()) or m.startswith(f"{host} answered"))]
    slower = "{} answered 429 or 503: one request every {} s or slower from now on"
    retrying = "retrying {} in {} s or a little more (attempt {} of 4): HTTP 429"
    assert said == [
        slower.format(host, "0.25"), retrying.format(busy, "0.1", 2),
        slower.format(host, "0.50"), retrying.format(busy, "0.2", 3),
        slower.format(host, "1.00"), retrying.format(busy, "0.4", 4),
        slower.format(host, "2.00"), f"http_status {busy}: HTTP 429",
    ]


_FAULTS_PER_PARSE = """
import ctypes, resource, sys
from selectolax.lexbor import LexborHTMLParser
from loopcrawl.core.engine import tune_malloc
page = ("<title>t</title>" + "<p>text <a href='/x'>x</a></p>" * 300).encode()
if sys.argv[1].startswith("eager"):
    # glibc at its most eager to give memory back, whatever the heap's layout:
    # blocks over 16 KiB mmapped, the heap's top trimmed at once.
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    assert mallopt(-3, 16 << 10) and mallopt(-1, 0) and mallopt(-2, 0)
if sys.argv[1].endswith("tuned"):
    assert tune_malloc()
for _ in range(20):
    LexborHTMLParser(page)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    LexborHTMLParser(page)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 200)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_tune_malloc_stops_page_faults_on_every_parse() -> None:
    """glibc gives a parse's pools back to the kernel (how often depends on
    the heap's layout, so on as little as the length of the venv's path), and
    the next parse faults them in again; tuned, the heap keeps them. The
    control sets glibc to give everything back, so it faults on every parse
    wherever the project lives, and tune_malloc must undo that."""
    def faults(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_PARSE, mode],
                             capture_output=True, text=True, timeout=60, check=True)
        return float(out.stdout)

    assert faults("eager") > 10  # the measurement sees the faults (60 here)
    assert faults("eager-tuned") < 1
    assert faults("tuned") < 1


_GC_AFTER_CRAWL = """
import gc, sys
from loopcrawl.core.runner import crawl
from loopcrawl.settings import Settings
before = gc.get_freeze_count()
crawl(Settings(seeds=(sys.argv[1],), quiet=True))
print(before, gc.get_freeze_count(), *gc.get_threshold())
"""


def test_a_crawl_freezes_start_up_for_the_collector(pages: PageServer) -> None:
    """crawl() (as the CLI and worker processes) leaves what start-up built
    out of the collector's passes, and collects the young generation rarely:
    a page's allocations are freed by reference counts (docs/architecture.md)."""
    pages.add("/")
    out = subprocess.run([sys.executable, "-c", _GC_AFTER_CRAWL, pages.url + "/"],
                         capture_output=True, text=True, timeout=60, check=True)
    before, frozen, young, middle, _ = map(int, out.stdout.split())
    assert before == 0 and frozen > 10_000  # the imported modules' objects
    assert (young, middle) == (50_000, 20)


@pytest.mark.parametrize(("answers", "delay"), [
    ([429], 0.25), ([503], 0.25), ([500], 0.0), ([429, 400], 0.25), ([429, 399], 0.1875),
    ([429, 200], 0.1875),
])
def test_which_answers_slow_a_host_down_and_which_relax_it(
    pages: PageServer, answers: list[int], delay: float
) -> None:
    """429 and 503 double the host's delay (from 0 to 0.25 s), a 500 does not;
    an answer below 400 takes it x0.75, a 400 leaves it. Read from the gate
    after the crawl, one request after the other, none retried."""
    paths = [f"/s{i}" for i in range(len(answers))]
    for p, status in zip(paths, answers, strict=True):
        pages.add(p, status=status)
    c = Crawler(Settings(seeds=tuple(pages.url + p for p in paths), retries=0, depth=0,
                         concurrency=1, per_host=1, obey_robots=False, timeout=10.0))
    asyncio.run(c.run())
    assert pages.paths() == paths
    assert c.scheduler is not None
    slot = c.scheduler.gate.slot(pages.url.removeprefix("http://"))
    assert slot is not None and slot.delay == delay


def test_a_record_says_what_was_asked_and_what_came_back(pages: PageServer) -> None:
    """/ links to /old, which redirects to /slow (answered after 0.3 s): /old's
    record has its depth, referrer, final URL, status, type, size and hops;
    it started when the crawl asked (Unix time) and took at least 0.3 s (and
    not much more). A page robots.txt forbids took no fetch: no status or size."""
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /private\n",
              content_type="text/plain")
    pages.add("/", links=["/old", "/private"])
    pages.add("/old", status=301, headers={"Location": "/slow"})
    pages.add("/slow", body="<title>slow</title>" + "x" * 100, delay=0.3)
    before = time.time()
    recs, _ = run(pages.url + "/", concurrency=1, per_host=1)
    after = time.time()
    got = by_url(recs)
    old, root, private = got[pages.url + "/old"], got[pages.url + "/"], got[pages.url + "/private"]
    assert (old.depth, old.referrer, old.final_url, old.status, old.content_type, old.bytes,
            old.redirects, old.title) == (1, pages.url + "/", pages.url + "/slow", 200,
                                          "text/html", 119, 1, "slow")
    assert root.fetched_at <= old.fetched_at <= private.fetched_at
    assert before <= root.fetched_at and private.fetched_at <= after
    assert 300 <= old.elapsed_ms < 300 + 3000
    assert 0 <= root.elapsed_ms < 3000
    assert (private.status, private.final_url, private.content_type, private.bytes,
            private.redirects, private.error) == (None, None, None, 0, 0, "robots_denied")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_requests_own_headers_and_credentials_without_crawl_credentials(
    pages: PageServer, workers: int
) -> None:
    """With no ``http_auth`` for the crawl, a spider's request still sends its
    own headers, and its own credentials (and only it), with worker
    processes too."""
    pages.add("/h")
    pages.add("/a")
    pages.add("/plain")
    base = pages.url

    class S(Spider):
        def start_requests(self) -> Any:
            yield Request(base + "/h", headers={"X-Mine": "1"})
            yield Request(base + "/a", auth=("u", "p"))
            yield Request(base + "/plain")

        def parse(self, response: Response) -> None:
            return None

    crawl(Settings(timeout=10.0, obey_robots=False, workers=workers), spider=S())
    sent = {h.path: h.headers for h in pages.log}
    assert sent["/h"].get("X-Mine") == "1" and "Authorization" not in sent["/h"]
    assert sent["/a"].get("Authorization") == "Basic dTpw"
    assert "Authorization" not in sent["/plain"] and "X-Mine" not in sent["/plain"]


def test_a_spider_is_told_why_the_crawl_ended(pages: PageServer) -> None:
    """``closed(reason)`` in Scrapy's words: three pages under a budget of 4
    "finished", of exactly 3 "closespider_pagecount"; ``stop()`` "shutdown"
    (before ``run()`` too: then nothing is fetched);
    an output that fails "error": the crawl stops at once (not the 20 pages
    found before it failed, 0.3 s apart) and raises the first error."""
    pages.add("/", links=["/a", "/b"])
    pages.add("/a")
    pages.add("/b")
    pages.add("/slow", delay=0.3)
    many = [f"/m{i}" for i in range(20)]
    pages.add("/many", links=many)
    for p in many:
        pages.add(p)
    reasons: list[str] = []
    crawler: list[Crawler] = []
    base = pages.url

    class S(Spider):
        start_urls = [base + "/"]
        stop_at: ClassVar[str | None] = None

        def parse(self, response: Response) -> Any:
            if response.url == self.stop_at:
                crawler[0].stop()
            yield from response.follow_all(css="a")
            yield {"url": response.url}

        def closed(self, reason: str) -> None:
            reasons.append(reason)

    class Failing(Output):
        format, roles, path = "failing", frozenset({"items"}), "failing"

        def write_item(self, item: dict[str, Any], kind: str,
                       fields: tuple[str, ...] | None) -> None:
            raise OutputError(f"failing: no space left for {item['url']}")

    def one(settings: Settings, spider: S, outputs: tuple[Output, ...] = ()) -> CrawlStats:
        crawler[:] = [Crawler(settings, spider=spider, outputs=outputs)]
        return asyncio.run(crawler[0].run())

    early = Crawler(Settings(timeout=10.0), spider=S())
    early.stop()  # before run(): nothing is asked, the crawl ends at once
    assert asyncio.run(early.run()).records == 0 and pages.log == []
    assert one(Settings(timeout=10.0, max_pages=4), S()).records == 3
    assert one(Settings(timeout=10.0, max_pages=3), S()).records == 3
    # /slow is in flight when / stops the crawl: abandoned, its spider told to forget it.
    S.stop_at, S.start_urls = base + "/", [base + "/", base + "/slow"]
    assert one(Settings(timeout=10.0), S()).interrupted
    S.stop_at, S.start_urls = None, [base + "/many"]
    pages.log.clear()
    with pytest.raises(OutputError) as e:
        one(Settings(timeout=10.0, delay=0.3, per_host=1, obey_robots=False), S(), (Failing(),))
    assert str(e.value) == f"failing: no space left for {base}/many"
    assert len([h for h in pages.log if h.path in many]) <= 1, pages.paths()
    assert reasons == ["shutdown", "finished", "closespider_pagecount", "shutdown", "error"]
