"""A whole crawl of the built-in test site, checked against its ground truth
and against the server's own request log."""

from __future__ import annotations

from collections import Counter

from loopcrawl.testsite import ServerThread, Site

from .helpers import run


def _ok_finals(recs) -> list[str]:
    return [r.final_url for r in recs if r.status == 200]


def test_finds_exactly_the_expected_pages_each_once(testsite: ServerThread,
                                                    site300: Site) -> None:
    base = testsite.base_url
    recs, stats = run(base + "/", concurrency=16, per_host=16)
    finals = _ok_finals(recs)
    assert len(finals) == len(set(finals)), "a page was recorded twice"
    assert set(finals) == set(site300.expected(base))
    assert {r.url for r in recs if r.status == 404} == site300.broken_urls(base)
    assert stats.errors["robots_denied"] > 0  # private pages are linked, and refused
    # The server's view: nothing forbidden, nothing off-site, nothing twice.
    log = testsite.server.log
    paths = Counter(e.raw_path for e in log if e.raw_path != "/robots.txt")
    assert not [p for p in paths if site300.forbidden(p)]
    assert {e.host for e in log} == {base.removeprefix("http://")}
    assert max(paths.values()) == 1, paths.most_common(3)
    assert [e.raw_path for e in log].count("/robots.txt") == 1


def test_depth_limit_matches_breadth_first_ground_truth(testsite: ServerThread,
                                                        site300: Site) -> None:
    base = testsite.base_url
    # One request at a time: the crawl is exactly breadth-first, so each page
    # is first found at its minimal depth.
    recs, _ = run(base + "/", depth=2, concurrency=1)
    assert set(_ok_finals(recs)) == set(site300.expected(base, depth=2))
    assert max(r.depth for r in recs) == 2


def test_scope_any_reaches_the_other_host_and_nothing_else(testsite: ServerThread,
                                                           site300: Site) -> None:
    base = testsite.base_url
    # The off-site links go to .invalid hosts (never resolvable): denied here so
    # the test does not wait on this machine's DNS.
    recs, stats = run(base + "/", scope="any", deny=[r"\.invalid[:/]"], concurrency=16,
                      per_host=16)
    assert set(_ok_finals(recs)) == set(site300.expected(base, scope="any"))
    hosts = {e.host for e in testsite.server.log}
    assert hosts == {base.removeprefix("http://"), f"127.0.0.2:{testsite.port}"}
    assert stats.skipped["scope"] > 0


def test_max_pages_and_politeness_at_the_server(site300: Site) -> None:
    with ServerThread(site300, latency_ms=20) as srv:
        recs, _ = run(srv.base_url + "/", max_pages=60, concurrency=32, per_host=3)
        assert len(recs) == 60
        assert srv.server.peak_concurrency_by_host[srv.base_url.removeprefix("http://")] == 3
