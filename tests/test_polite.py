"""Every request to a host keeps its delay, measured at the server: redirect
hops, retries and robots.txt (first fetch and re-fetches) wait for the host's
turn like any request (``Scheduler.started``/``claim``, issue 15)."""

from __future__ import annotations

import itertools
from collections import Counter

from aiohttp import web

from .conftest import PageServer
from .helpers import by_url, run

DELAY = 0.2
# The server reads arrival times in a thread of the test's process: the GIL
# and a loaded machine make one read late by a few milliseconds now and then.
JITTER = 0.05


def _starts(server: PageServer, prefix: str = "/") -> list[float]:
    return sorted(h.start for h in server.log if h.path.startswith(prefix))


def assert_polite(starts: list[float], delay: float = DELAY) -> None:
    """Arrivals ``delay`` apart: n requests span n - 1 delays (less the jitter
    of two reads), and no gap is a burst. An arrival read late makes one gap
    long and the next short by as much, so single gaps are held to half the
    delay (a burst, what this is about, arrives within milliseconds) and pairs
    of gaps to two delays."""
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert starts[-1] - starts[0] >= len(gaps) * delay - JITTER, gaps
    assert min(gaps) >= delay / 2, gaps
    pairs = [a + b for a, b in itertools.pairwise(gaps)]
    assert not pairs or min(pairs) >= 2 * delay - JITTER, gaps


def test_redirect_hops_and_robots_txt_wait_for_crawl_delay(pages: PageServer) -> None:
    pages.add("/robots.txt", body=f"User-agent: *\nCrawl-delay: {DELAY}\n",
              content_type="text/plain")
    pages.add("/", links=["/r/0", "/a"])
    for i in range(10):
        pages.add(f"/r/{i}", status=302, headers={"Location": f"/r/{i + 1}"})
    pages.add("/r/10")
    pages.add("/a")
    recs, _ = run(pages.url + "/", per_host=8)
    got = by_url(recs)
    assert got[pages.url + "/r/0"].redirects == 10 and got[pages.url + "/r/0"].status == 200
    paths = pages.paths()
    assert paths[0] == "/robots.txt" and len(paths) == 14  # robots, /, 11 of the chain, /a
    assert_polite(_starts(pages))
    # ... and not much more than the delay between the hops of the chain.
    hops = _starts(pages, "/r/")
    assert hops[-1] - hops[0] < 10 * DELAY + 0.5


def test_retries_wait_for_the_delay(pages: PageServer) -> None:
    hits: Counter[str] = Counter()

    async def flaky(request: web.BaseRequest) -> web.StreamResponse:
        hits[request.path] += 1
        if request.path == "/":
            body = "".join(f'<a href="/f{i}">f</a>' for i in range(3))
            return web.Response(text=body, content_type="text/html")
        if request.path == "/robots.txt":
            return web.Response(status=404)  # no rules: the first request opens the connection
        if hits[request.path] <= 2:  # two failures (500: no throttling), then the page
            return web.Response(status=500)
        return web.Response(text="ok", content_type="text/html")

    pages.handler = flaky
    recs, stats = run(pages.url + "/", delay=DELAY, retry_backoff=0.01, per_host=4)
    assert stats.retries == 6 and all(r.status == 200 for r in recs)
    starts = _starts(pages)
    assert len(starts) == 11
    assert_polite(starts)
    # Retries are not held back beyond the delay: 11 requests in about 10 delays.
    assert starts[-1] - starts[0] < 10 * DELAY + 1.0


def test_robots_txt_refetch_waits_for_the_delay(pages: PageServer) -> None:
    hits: Counter[str] = Counter()

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        hits[request.path] += 1
        if request.path == "/robots.txt" and hits[request.path] == 1:
            return web.Response(status=503)  # unreachable: asked again after the window
        if request.path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        return web.Response(text='<a href="/b">b</a>', content_type="text/html")

    pages.handler = handler
    recs, _ = run(pages.url + "/", delay=DELAY, robots_error_retry=0.01, retry_backoff=0.01)
    assert {r.status for r in recs} == {200} and len(recs) == 2
    assert pages.paths().count("/robots.txt") == 2
    starts = _starts(pages)
    assert len(starts) == 4
    assert_polite(starts)


def test_no_delay_means_no_wait(pages: PageServer) -> None:
    """Without a delay the turns cost nothing: a 10-hop chain in well under 0.1 s."""
    pages.add("/", links=["/r/0"])
    for i in range(10):
        pages.add(f"/r/{i}", status=302, headers={"Location": f"/r/{i + 1}"})
    pages.add("/r/10")
    run(pages.url + "/", obey_robots=False)
    hops = _starts(pages, "/r/")
    assert len(hops) == 11 and hops[-1] - hops[0] < 0.15
