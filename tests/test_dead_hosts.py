"""A host that cannot be reached fails fast and says so: each way of being
unreachable is its own error kind, for the page and for its robots.txt, and
the crawl ends within the connect timeout plus a second (not after robots.txt's
30-second window, and never as ``robots_denied``)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import pytest
import trustme

from .conftest import PageServer
from .helpers import by_url, run

CONNECT = 3.0  # connect_timeout of these crawls: the bound is CONNECT + 1 s


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(seeds: str | list[str], **settings: object) -> tuple[list, object, float]:
    t0 = time.monotonic()
    records, stats = run(seeds, connect_timeout=CONNECT, **settings)
    return records, stats, time.monotonic() - t0


@pytest.fixture(params=[True, False], ids=["pool", "session"])
def http_pool(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def https_unknown_ca() -> Iterator[PageServer]:
    """An HTTPS server whose certificate comes from a CA nobody trusts."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
    with PageServer(ssl_context=ctx) as srv:
        srv.add("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain")
        srv.add("/", links=["/a"])
        yield srv


@pytest.mark.parametrize("robots", [True, False], ids=["robots", "no-robots"])
def test_a_refused_connection(http_pool: bool, robots: bool) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    records, stats, took = timed(url, http_pool=http_pool, obey_robots=robots)
    assert [(r.url, r.error, r.status) for r in records] == [(url, "connection_refused", None)]
    assert stats.retries == 2  # retried like any page (bounded, short back-off)
    assert took < CONNECT + 1


@pytest.mark.parametrize("robots", [True, False], ids=["robots", "no-robots"])
def test_a_name_that_does_not_resolve(http_pool: bool, robots: bool) -> None:
    records, _, took = timed("http://no-such-host.invalid/", http_pool=http_pool,
                             obey_robots=robots)
    assert [r.error for r in records] == ["dns_error"]
    assert took < CONNECT + 1


@pytest.mark.parametrize("robots", [True, False], ids=["robots", "no-robots"])
def test_a_certificate_from_an_unknown_ca_is_not_retried(
    https_unknown_ca: PageServer, http_pool: bool, robots: bool,
) -> None:
    records, stats, took = timed(https_unknown_ca.url + "/", http_pool=http_pool,
                                 obey_robots=robots)
    assert [r.error for r in records] == ["tls_error"]
    assert "CERTIFICATE_VERIFY_FAILED" in (records[0].message or "")
    assert stats.retries == 0  # a certificate does not get better on the next try
    assert took < CONNECT + 1
    # Nothing got past the handshake (the server saw no request).
    assert https_unknown_ca.log == []


def test_a_refusing_proxy(pages: PageServer) -> None:
    pages.add("/")
    records, _, took = timed(pages.url + "/", proxy=f"http://127.0.0.1:{closed_port()}")
    assert [r.error for r in records] == ["proxy_error"]
    assert pages.log == []
    assert took < CONNECT + 1


def test_dead_off_site_hosts_do_not_hold_up_the_crawl(pages: PageServer) -> None:
    """Links to two dead hosts (--scope any): their pages fail fast, the live
    host's pages are crawled."""
    dead = f"http://127.0.0.1:{closed_port()}/x"
    nowhere = "http://no-such-host.invalid/y"
    pages.add("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain")
    pages.add("/", links=[dead, nowhere, "/a"])
    pages.add("/a")
    records, _, took = timed(pages.url + "/", scope="any")
    got = {u: r.error for u, r in by_url(records).items()}
    assert got == {pages.url + "/": None, pages.url + "/a": None,
                   dead: "connection_refused", nowhere: "dns_error"}
    assert took < CONNECT + 1


def test_robots_txt_of_a_host_that_answers_5xx_keeps_rfc_9309(pages: PageServer) -> None:
    """A reachable host whose robots.txt fails: the page waits out the window,
    then fails as robots_unreachable (worth another try), not robots_denied."""
    pages.add("/robots.txt", status=500, body="oops")
    pages.add("/")
    records, stats, _ = timed(pages.url + "/", robots_error_retry=0.2, retry_backoff=0.05)
    assert [(r.error, r.message) for r in records] == [
        ("robots_unreachable", "robots.txt answered 500")]
    assert stats.retries == 2 and "/" not in pages.paths()
