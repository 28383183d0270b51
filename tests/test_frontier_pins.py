"""Frontier promises that make mutate found unpinned (docs/testing.md): what
``add_links`` keeps of a page's links, claims that survive a restart, and the
refusal that names the crawl holding a state file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from loopcrawl.errors import StateError
from loopcrawl.frontier import MemoryFrontier
from loopcrawl.frontier.base import callback_names
from loopcrawl.frontier.seen import SeenSet
from loopcrawl.frontier.sqlite import SqliteFrontier
from loopcrawl.http import FetchRecord, Request
from loopcrawl.urls import fingerprint

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_add_links_keeps_what_the_filter_keeps_with_depth_and_referrer(
    tmp_path: Path, kind: str,
) -> None:
    urls = ["http://h.test/keep1", "http://h.test/drop", "http://h.test/keep2"]

    async def go() -> tuple[int, int, list[tuple[str, int, str | None]]]:
        f = MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db")
        try:
            n = await f.add_links(urls, 2, "http://h.test/",
                                  keep=lambda us: [u for u in us if "keep" in u])
            again = await f.add_links(urls, 3, "http://h.test/other")  # no filter now
            got = await f.lease(10)
            return n, again, [(r.url, r.depth, r.referrer) for r in got]
        finally:
            await f.close()

    n, again, got = asyncio.run(go())
    assert n == 2 and again == 1  # /drop was never seen: it comes now, with its own page
    assert got == [("http://h.test/keep1", 2, "http://h.test/"),
                   ("http://h.test/keep2", 2, "http://h.test/"),
                   ("http://h.test/drop", 3, "http://h.test/other")]


def test_a_claim_is_kept_by_the_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fp = fingerprint("http://h.test/target")

    async def first() -> None:
        f = SqliteFrontier(db)
        assert await f.mark_seen(fp)
        await f.checkpoint(None)
        await f.close()

    async def second() -> bool:
        f = SqliteFrontier(db)
        try:
            return await f.mark_seen(fp)
        finally:
            await f.close()

    asyncio.run(first())
    assert asyncio.run(second()) is False  # claimed before the restart


def test_a_state_file_in_use_names_the_crawl_that_holds_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteFrontier(db), pytest.raises(StateError) as got:
        SqliteFrontier(db)
    assert str(got.value) == (f"{db} is in use by another crawl (pid {os.getpid()}); "
                              "wait for it to end, or stop it, before resuming")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # nothing else made


def test_the_seen_sets_shards_double_when_half_full() -> None:
    """256 shards of 256 slots (512 KiB empty); a shard doubles when it holds
    more than half its slots, and only then (the memory the docs promise)."""
    s = SeenSet()
    assert s.nbytes() == 256 * 256 * 8
    for fp in range(1, 129):  # top byte 0: all in shard 0
        assert s.add(fp)
    assert s.nbytes() == 256 * 256 * 8  # 128 of 256: half full, not more
    assert s.add(129)
    assert s.nbytes() == 255 * 256 * 8 + 512 * 8
    assert all(fp in s for fp in range(1, 130)) and 130 not in s and "1" not in s
    for fp in range(130, 257):
        s.add(fp)
    assert s.nbytes() == 255 * 256 * 8 + 512 * 8  # 256 of 512
    s.add(257)
    assert s.nbytes() == 255 * 256 * 8 + 1024 * 8


def test_a_seen_set_is_sized_up_front_for_the_members_it_will_hold() -> None:
    """A resumed crawl's set is made for its members (``expected``): the fewest
    slots per shard, a power of two from 256, that keep them at most 2/5 full
    (headroom under the 1/2 at which a shard doubles), each side of the bound."""
    for expected, slots in [(0, 256), (26_214, 256), (26_215, 512), (52_429, 512),
                            (52_430, 1024), (104_857, 1024), (104_858, 2048)]:
        assert SeenSet(expected).nbytes() == 256 * slots * 8, expected
    s = SeenSet(52_429)
    assert 0 not in s and s.add(0) and 0 in s and not s.add(0) and len(s) == 1


def test_the_state_file_checkpoints_every_second_or_past_50000_changes(tmp_path: Path) -> None:
    """The defaults docs/state.md promises, which the crawl runner leaves as
    they are (each one's effect is pinned in ``test_checkpoint_pins.py``)."""
    with SqliteFrontier(tmp_path / "s.db") as f:
        assert (f.checkpoint_interval, f.max_buffered) == (1.0, 50_000)


def test_a_lease_while_a_commit_lands_takes_each_request_once_in_order(tmp_path: Path) -> None:
    """A lease after a checkpoint's commit is in the file but before the loop
    has heard of it: the reader sees rows still held in RAM too. Each request
    is leased once, in order, and the ones found after the checkpoint began
    (only in RAM) are leased by the same lease."""
    db = tmp_path / "s.db"

    def rows() -> int:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT count(*) FROM requests").fetchone()[0])
        finally:
            con.close()

    async def go() -> tuple[list[str], list[str]]:
        f = SqliteFrontier(db)
        try:
            await f.add([Request(f"http://h/{i}") for i in range(4)])
            await f.checkpoint(None)
            await f.add([Request(f"http://h/{i}") for i in range(4, 8)])
            ck = asyncio.create_task(f.checkpoint(None))
            await asyncio.sleep(0)  # the checkpoint has taken its changes; its commit runs
            await f.add([Request("http://h/later")])
            t0 = time.monotonic()
            while rows() < 8:  # blocking the loop: the checkpoint cannot finish meanwhile
                assert time.monotonic() - t0 < 10
                time.sleep(0.005)
            got = [r.url for r in await f.lease(20)]
            await ck
            return got, [r.url for r in await f.lease(20)]
        finally:
            await f.close()

    got, after = asyncio.run(go())
    assert got == [f"http://h/{i}" for i in range(8)] + ["http://h/later"]
    assert after == []


def test_callbacks_are_kept_by_name_and_anything_else_refused_word_for_word() -> None:
    class Spiderish:
        def detail(self, response: object) -> None: ...

        def failed(self, failure: object) -> None: ...

    s = Spiderish()
    assert callback_names(Request("http://h/"), "kept in a state file") == {}
    assert callback_names(Request("http://h/", callback=s.detail, errback=s.failed),
                          "kept in a state file") == {"callback": "detail", "errback": "failed"}
    assert callback_names(Request("http://h/", errback="oops"), "queued in Redis") == {
        "errback": "oops"}

    def free(response: object) -> None: ...

    with pytest.raises(StateError) as got:
        callback_names(Request("http://h/a", callback=s.detail, errback=free), "queued in Redis")
    assert str(got.value) == (f"the errback of http://h/a ({free!r}) is not a method of the "
                              "spider, so it cannot be queued in Redis")
    with pytest.raises(StateError) as got:
        callback_names(Request("http://h/b", callback=free), "kept in a state file")
    assert str(got.value) == (f"the callback of http://h/b ({free!r}) is not a method of the "
                              "spider, so it cannot be kept in a state file")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_priorities_lease_positive_then_fifo_then_negative(tmp_path: Path, kind: str) -> None:
    """A spider's priorities: higher first, then the plain FIFO queue, then
    negative ones; first come, first served within one priority; a lease of
    ``n`` cut across them; a released request back before the FIFO queue."""

    async def go() -> list[list[str]]:
        f = MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db")
        try:
            await f.add([Request("http://h/n1", priority=-1), Request("http://h/f1"),
                         Request("http://h/p1", priority=1), Request("http://h/p5", priority=5),
                         Request("http://h/f2"), Request("http://h/p1b", priority=1),
                         Request("http://h/n5", priority=-5), Request("http://h/n1b", priority=-1),
                         Request("http://h/f3")])
            out = []
            for n in (2, 2):
                out.append([r.url.removeprefix("http://h/") for r in await f.lease(n)])
            (f2,) = await f.lease(1)
            await f.release(f2)
            for n in (3, 2, 5):
                out.append([r.url.removeprefix("http://h/") for r in await f.lease(n)])
            st = await f.statistics()
            assert (st.queued, st.leased, st.seen) == (0, 9, 9)
            return out
        finally:
            await f.close()

    assert asyncio.run(go()) == [["p5", "p1"], ["p1b", "f1"], ["f2", "f3", "n1"],
                                 ["n1b", "n5"], []]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_dont_filter_queues_a_seen_request_again_and_counts_it(tmp_path: Path, kind: str) -> None:
    async def go() -> None:
        f = MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db")
        try:
            assert await f.add([Request("http://h/a"), Request("http://h/a")]) == 1
            assert await f.add([Request("http://h/a")]) == 0
            assert await f.add([Request("http://h/a", dont_filter=True),
                                Request("http://h/b")]) == 2
            assert await f.add([Request("http://h/b"), Request("http://h/c")]) == 1
            got = await f.lease(10)
            assert [r.url for r in got] == ["http://h/a", "http://h/a", "http://h/b",
                                            "http://h/c"]
            for r in got:
                await f.ack(r, FetchRecord(r.url, 0, None, 0.0))
            st = await f.statistics()
            assert (st.queued, st.leased, st.done, st.seen) == (0, 0, 4, 3)
            assert await f.is_finished()
        finally:
            await f.close()

    asyncio.run(go())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_claim_ends_with_its_requests_ack(tmp_path: Path, kind: str) -> None:
    """Once ``by`` is acked, its claims are no longer its own: the same
    request queued again (``dont_filter``) must not fetch the target again."""

    async def go() -> None:
        f = MemoryFrontier() if kind == "memory" else SqliteFrontier(tmp_path / "s.db")
        await f.add([Request("http://h/a"), Request("http://h/b")])
        a, b = await f.lease(2)
        assert await f.mark_seen(111, by=a)
        assert await f.mark_seen(111, by=a)  # its retry follows the redirect again
        assert await f.ack(b, FetchRecord(b.url, 0, None, 0.0))  # b claimed nothing
        await f.ack(a, FetchRecord(a.url, 0, None, 0.0))
        await f.add([Request("http://h/a", dont_filter=True)])
        (again,) = await f.lease(1)
        assert not await f.mark_seen(111, by=again)
        assert not await f.mark_seen(111)
        await f.close()

    asyncio.run(go())


def test_an_expired_lease_is_leased_again_first_by_the_next_lease() -> None:
    """A lease past its deadline goes back to the front (a spider's priority
    kept), found by the next ``lease`` itself; the old holder's object keeps
    its token, and a heartbeat moves a deadline to ``lease_ttl`` from now."""

    async def go() -> None:
        f = MemoryFrontier(lease_ttl=0.3)
        await f.add([Request(f"http://h/{c}") for c in "abc"]
                    + [Request("http://h/p", priority=2)])
        (p,) = await f.lease(1)
        t0 = time.time()
        (a,) = await f.lease(1)
        assert t0 + 0.3 <= a.lease_deadline <= time.time() + 0.3
        token = a.lease
        await asyncio.sleep(0.35)
        got = await f.lease(2)
        assert [(r.url, r.priority) for r in got] == [("http://h/p", 2), ("http://h/a", 0)]
        assert got[0] is not p and got[1] is not a and a.lease == token
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.seen, st.expired) == (2, 2, 0, 4, 2)
        await asyncio.sleep(0.2)
        t1 = time.time()
        assert await f.extend(got) == []
        assert all(t1 + 0.3 <= r.lease_deadline <= time.time() + 0.3 for r in got)
        await asyncio.sleep(0.15)  # past the first deadline, not the extended one
        assert (await f.statistics()).expired == 2
        for r in got:
            assert await f.ack(r, FetchRecord(r.url, 0, None, 0.0))
        await f.release(a)  # the old holder's late release changes nothing
        st = await f.statistics()
        assert (st.queued, st.leased, st.done) == (2, 0, 2)

    asyncio.run(go())


def test_expired_leases_are_all_found_by_one_look_past_acked_and_extended_ones() -> None:
    """Leases ``a``, ``b``, ``c`` with one deadline; ``a`` acked and ``b``
    extended before it: the first look past the deadline (``statistics``
    itself) finds ``c`` expired, behind the other two in the deadline heap."""

    async def go() -> None:
        f = MemoryFrontier(lease_ttl=0.3)
        await f.add([Request(f"http://h/{c}") for c in "abc"])
        a, b, c = await f.lease(3)
        await f.ack(a, FetchRecord(a.url, 0, None, 0.0))
        await asyncio.sleep(0.15)
        assert await f.extend([b]) == []
        await asyncio.sleep(0.25)  # past a, b and c's first deadline; b's is later
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.expired) == (1, 1, 1, 1)
        (again,) = await f.lease(5)
        assert again.url == c.url and again is not c

    asyncio.run(go())



def test_sqlite_leases_count_and_persist_every_way_a_request_leaves(tmp_path: Path) -> None:
    """The SQLite frontier's own counts, each through its public face: a lease
    of ``n`` is exactly ``n`` wherever its requests come from (released ones,
    the file, RAM); released requests back on the queue's count; ``done``
    counting failures one each; ``--max-pages``' count (``pages_done``: not a
    robots.txt refusal); not finished while one lease is out; a negative
    priority's ack persisted like any other."""
    db = tmp_path / "s.db"

    def rec(r: Request, error: str | None = None) -> FetchRecord:
        return FetchRecord(r.url, r.depth, r.referrer, 0.0, status=200, error=error)

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request(f"http://h/{i}") for i in range(6)])
        await f.checkpoint(None)  # all six in the file now
        r0, r1, r2 = await f.lease(3)
        await f.release(r0)
        await f.release(r1)
        st = await f.statistics()
        assert (st.queued, st.leased) == (5, 1)
        out = await f.lease(1)  # one of the two released, not both
        assert [r.url for r in out] == ["http://h/1"]
        out += await f.lease(2)  # the other released one, then the file: two, not three
        assert [r.url for r in out] == ["http://h/1", "http://h/0", "http://h/3"]
        await f.add([Request("http://h/neg", priority=-1)])
        rest = await f.lease(10)
        assert [r.url for r in rest] == ["http://h/4", "http://h/5", "http://h/neg"]
        st = await f.statistics()
        assert (st.queued, st.leased, st.done) == (0, 7, 0)
        by_url = {r.url: r for r in [r2, *out, *rest]}
        errors = {"http://h/1": "timeout", "http://h/3": "http_status",
                  "http://h/4": "robots_denied"}
        for url, r in by_url.items():
            if url != "http://h/5":
                assert await f.ack(r, rec(r, errors.get(url)))
        assert not await f.is_finished()  # /5 is still out
        st = await f.statistics()
        assert (st.queued, st.leased, st.done) == (0, 1, 6)
        assert f.pages_done == 5  # the robots.txt refusal is no page
        await f.checkpoint(None)
        await f.close()

    asyncio.run(go())
    with SqliteFrontier(db) as f:
        st = asyncio.run(f.statistics())
        assert (st.queued, st.done, f.pages_done) == (1, 6, 5)
        assert [r.url for r in asyncio.run(f.lease(10))] == ["http://h/5"]
