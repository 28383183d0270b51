"""The fetcher's promises that make mutate found unpinned (docs/testing.md):
a redirect hop's politeness wait is not the server's slowness, and what a
failed fetch's message says."""

from __future__ import annotations

import time

from loopcrawl.testsite import hostile

from .conftest import PageServer
from .helpers import run

# Each request must end within 0.6 s in all (0.5 s without a byte), and a
# host's requests start 1 s apart: a hop's wait for its turn is longer than
# either timeout.
TIGHT = {"timeout": 0.6, "read_timeout": 0.5, "connect_timeout": 0.5, "delay": 1.0,
         "retries": 0, "depth": 0, "obey_robots": False}


def test_a_redirect_hops_wait_for_its_turn_is_not_counted_by_the_timeouts(
    pages: PageServer,
) -> None:
    pages.add("/", status=302, headers={"Location": "/b"})
    pages.add("/b", title="b")
    recs, _ = run(pages.url + "/", **TIGHT)
    assert [(r.status, r.error, r.redirects) for r in recs] == [(200, None, 1)], recs
    first, hop = pages.log
    assert hop.path == "/b"
    assert hop.start - first.start >= 0.9  # the hop did wait its turn (1 s, less the handshake)


def test_the_timeouts_still_run_after_a_redirect_hops_wait(pages: PageServer) -> None:
    """After the wait, the hop has its whole timeout again, and no more: a
    server that answers 3 s late is cut at the timeout."""
    pages.add("/", status=302, headers={"Location": "/slow"})
    pages.add("/slow", title="slow", delay=3.0)
    t0 = time.monotonic()
    recs, _ = run(pages.url + "/", **TIGHT)
    took = time.monotonic() - t0
    assert [r.error for r in recs] == ["timeout"], recs
    assert took < 1.0 + 0.6 + 1.0  # the turn, the timeout, slack; the server answers at 4 s


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
