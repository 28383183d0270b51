"""The checkpoint protocol of the SQLite frontier pinned in-process
(``frontier/sqlite/checkpoint.py``, ``_rows.py``; docs/state.md): the output
durable before the commit that records its mark, a mark found again from a
relative ``-o``, a failed output stopping every later checkpoint, a cancelled
checkpoint finished before the next begins, checkpoints every interval and
early when the buffers fill (and nothing written between), the per-host
counts ``loopcrawl status`` reads, the meta rows, and a request's every field
through a row and back. ``tests/test_state.py`` checks the whole guarantee
with real kills; these fail when one part of it is taken away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from loopcrawl import Settings
from loopcrawl.errors import OutputError, StateError
from loopcrawl.frontier.sqlite import SqliteFrontier
from loopcrawl.http import FetchRecord, Request
from loopcrawl.outputs import JsonlWriter

from .conftest import PageServer
from .helpers import rows_in

pytestmark = pytest.mark.timeout(60)


def rec(r: Request, error: str | None = None) -> FetchRecord:
    return FetchRecord(r.url, r.depth, r.referrer, 0.0, final_url=r.url, status=200, error=error)


def meta_of(db: Path) -> dict[str, str]:
    """The meta rows as another process (``loopcrawl status``) reads them."""
    return dict(rows_in(db, "SELECT key, value FROM meta"))


class WatchedJsonl(JsonlWriter):
    """A real JSONL output that notes, each time it is fsynced, which mark of
    it the state file holds at that moment (read as another process would)."""

    def __init__(self, path: str, db: Path, **kw: object) -> None:
        super().__init__(path, **kw)  # type: ignore[arg-type]
        self.db = db
        self.seen_at_fsync: list[tuple[int, object]] = []

    def fsync(self) -> None:
        marks = json.loads(meta_of(self.db).get("outputs", "{}"))
        self.seen_at_fsync.append((self.tell(), marks.get(os.path.abspath(self.path))))
        super().fsync()


def test_the_output_is_durable_before_the_commit_that_records_its_mark(tmp_path: Path) -> None:
    db, out = tmp_path / "s.db", tmp_path / "out.jsonl"

    async def go() -> WatchedJsonl:
        f = SqliteFrontier(db)
        (mark,) = f.bind_outputs([str(out)])
        w = WatchedJsonl(str(out), db, resume_at=mark or 0, batch=1000)
        try:
            for i in range(3):
                w.write({"url": f"http://h/{i}"})
                await f.checkpoint(w)
            await f.checkpoint(w)  # nothing new: the same mark
        finally:
            await f.close()
            w.close()
        return w

    w = asyncio.run(go())
    line = len(b'{"url":"http://h/0"}\n')
    # At each fsync the file still recorded the previous checkpoint's mark.
    assert w.seen_at_fsync[:4] == [(line, None), (2 * line, line), (3 * line, 2 * line),
                               (3 * line, 3 * line)]
    assert json.loads(meta_of(db)["outputs"]) == {str(out): 3 * line}


def test_a_relative_output_resumes_at_its_mark(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``-o pages.jsonl --state s.db`` run twice from the same directory: the
    mark is found again (the state keys outputs by absolute path)."""
    monkeypatch.chdir(tmp_path)

    async def run_once(i: int) -> object:
        f = SqliteFrontier("s.db")
        (mark,) = f.bind_outputs(["pages.jsonl"])
        w = JsonlWriter("pages.jsonl", resume_at=mark or 0)
        try:
            await f.add([Request(f"http://h/{i}")])
            (r,) = await f.lease(1)
            w.write({"url": r.url})
            await f.ack(r, rec(r))
            await f.checkpoint(w)
            w.write({"url": "after the checkpoint: cut back on resume"})
            w.flush()
        finally:
            await f.close()
            w.close()
        return mark

    assert asyncio.run(run_once(0)) is None
    line = len(b'{"url":"http://h/0"}\n')
    assert asyncio.run(run_once(1)) == line
    assert (tmp_path / "pages.jsonl").read_bytes().splitlines()[:2] == [
        b'{"url":"http://h/0"}', b'{"url":"http://h/1"}']
    assert json.loads(meta_of(tmp_path / "s.db")["outputs"]) == {
        str(tmp_path / "pages.jsonl"): 2 * line}


def test_a_failed_output_stops_every_later_checkpoint(tmp_path: Path) -> None:
    """The disk is full (``/dev/full``): the checkpoint raises, commits
    nothing, and so does every later one, with or without outputs."""
    db = tmp_path / "s.db"

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request("http://h/a")])
        await f.checkpoint(None)
        w = JsonlWriter("/dev/full")
        try:
            w.write({"url": "http://h/a"})
            await f.add([Request("http://h/b")])
            with pytest.raises(OutputError) as first:
                await f.checkpoint(w)
            with pytest.raises(OutputError) as again:
                await f.checkpoint(None)
            assert again.value is first.value
        finally:
            await f.close()
            w.close()
        closed = SqliteFrontier(tmp_path / "other.db")
        await closed.close()
        with pytest.raises(StateError, match=f"^{tmp_path / 'other.db'} is closed$"):
            await closed.checkpoint(None)

    asyncio.run(go())
    assert rows_in(db, "SELECT url FROM requests") == [("http://h/a",)]


def test_a_cancelled_checkpoint_ends_before_the_next_one_begins(tmp_path: Path) -> None:
    """The crawl cancels its periodic checkpoints at the end and takes a last
    one at once: the cancelled commit, already on its thread, finishes first
    (one connection, one transaction at a time), and both are kept."""
    db = tmp_path / "s.db"
    n = 40_000

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request(f"http://h/{i}") for i in range(n)])
        t = asyncio.create_task(f.checkpoint(None))
        await asyncio.sleep(0.01)  # on its thread now
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        await f.add([Request("http://h/last")])
        await f.checkpoint(None)
        got = await f.lease(n + 5)
        assert len(got) == n + 1 and got[-1].url == "http://h/last"
        await f.close()

    asyncio.run(go())
    assert rows_in(db, "SELECT count(*) FROM requests") == [(n + 1,)]


def test_nothing_is_written_between_checkpoints_which_come_every_interval(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def go() -> tuple[int, int, float]:
        f = SqliteFrontier(db, checkpoint_interval=0.4)
        ticker = asyncio.create_task(f.run_checkpoints(None))
        await asyncio.sleep(0.05)  # the loop's first checkpoint waits its interval
        await f.add([Request("http://h/a")])
        t0 = time.monotonic()
        before = rows_in(db, "SELECT count(*) FROM requests")[0][0]
        while rows_in(db, "SELECT count(*) FROM requests")[0][0] == 0:
            assert time.monotonic() - t0 < 3.0
            await asyncio.sleep(0.01)
        took = time.monotonic() - t0
        await f.add([Request("http://h/b")])
        await asyncio.sleep(0.1)
        between = rows_in(db, "SELECT count(*) FROM requests")[0][0]
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await f.close()
        return before, between, took

    before, between, took = asyncio.run(go())
    assert before == 0 and between == 1
    assert 0.2 < took < 1.5, took


@pytest.mark.parametrize(("added", "early"), [(10, False), (11, True)])
def test_a_checkpoint_comes_early_when_more_than_max_buffered_changes_wait(
    tmp_path: Path, added: int, early: bool,
) -> None:
    db = tmp_path / "s.db"

    async def go() -> int:
        f = SqliteFrontier(db, checkpoint_interval=30.0, max_buffered=10)
        ticker = asyncio.create_task(f.run_checkpoints(None))
        await f.add([Request(f"http://h/{i}") for i in range(added)])
        await asyncio.sleep(0.5)
        n = rows_in(db, "SELECT count(*) FROM requests")[0][0]
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await f.close()
        return n

    assert asyncio.run(go()) == (added if early else 0)


def test_the_hosts_table_counts_queued_done_and_failed_per_host(tmp_path: Path) -> None:
    """What ``loopcrawl status`` shows per host, kept by each checkpoint (a
    request found and finished in one checkpoint, or finished in a later one,
    two of a kind at once) and read back as the resumed crawl's counts; each
    request's state and error kind in its row."""
    db = tmp_path / "s.db"

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request(u) for u in ("http://a.test/1", "http://a.test/2",
                                          "http://a.test/3", "http://a.test/4",
                                          "http://b.test:8080/1", "http://b.test:8080/2")])
        a1, a2, a3, _a4, b1, b2 = await f.lease(6)
        await f.ack(a1, rec(a1))
        await f.ack(b1, rec(b1, error="http_status"))
        await f.checkpoint(None)  # found and finished in the same checkpoint
        await f.ack(a2, rec(a2, error="timeout"))
        await f.ack(a3, rec(a3, error="connection_error"))
        await f.ack(b2, rec(b2, error="robots_denied"))  # policy: done, not failed
        await f.checkpoint(None)  # finished a checkpoint after they were found
        await f.close()

    asyncio.run(go())
    assert sorted(rows_in(db, "SELECT host, queued, done, failed FROM hosts")) == [
        ("a.test", 1, 1, 2), ("b.test:8080", 0, 1, 1)]
    assert rows_in(db, "SELECT url, state, error FROM requests ORDER BY id") == [
        ("http://a.test/1", 1, None), ("http://a.test/2", 2, "timeout"),
        ("http://a.test/3", 2, "connection_error"), ("http://a.test/4", 0, None),
        ("http://b.test:8080/1", 2, "http_status"), ("http://b.test:8080/2", 1, "robots_denied")]
    with SqliteFrontier(db) as f:
        st = asyncio.run(f.statistics())
        assert (st.queued, st.done, st.seen) == (1, 5, 6)


def test_meta_holds_the_last_checkpoints_time_pages_in_flight_and_marks(tmp_path: Path) -> None:
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"

    async def go() -> None:
        f = SqliteFrontier(db)
        (mark,) = f.bind_outputs([str(out)])
        w = JsonlWriter(str(out), resume_at=mark or 0)
        await f.add([Request(f"http://h/{i}") for i in range(4)])
        r0, r1, _r2 = await f.lease(3)
        for r in (r0, r1):
            w.write({"url": r.url})
            await f.ack(r, rec(r, error="robots_denied" if r is r1 else None))
        t0 = time.time()
        await f.checkpoint(w)
        t1 = time.time()
        m = meta_of(db)
        assert t0 <= float(m["checkpoint_at"]) <= t1
        # Two records; one robots_denied, which --max-pages does not count.
        assert (m["in_flight"], m["pages"]) == ("1", "1")
        assert json.loads(m["outputs"]) == {str(out): w.tell()}
        await f.checkpoint(None)  # no outputs given: the marks stay
        assert json.loads(meta_of(db)["outputs"]) == {str(out): w.tell()}
        await f.close()
        w.close()

    asyncio.run(go())
    with SqliteFrontier(db) as f:
        assert f.pages_done == 1


def test_a_request_keeps_every_field_through_its_row(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    edge = [1, 2**63 - 1, 2**63, 2**64 - 1]  # fingerprints around SQLite's sign bit
    reqs = [Request(f"http://h/fp{i}", fp=fp) for i, fp in enumerate(edge)]
    full = Request("http://h/form", 3, "http://h/", "POST", 0, 2, meta={"k": [1, "x"]},
                   headers={"X-A": "b"}, body=b"a=1", dont_filter=True)
    plain = Request("http://h/plain", 1, None)

    async def first() -> None:
        f = SqliteFrontier(db)
        await f.add([*reqs, full, plain])
        await f.checkpoint(None)
        await f.close()

    async def second() -> None:
        f = SqliteFrontier(db)
        for fp in edge:
            assert not await f.mark_seen(fp)  # seen again after the restart
        got = await f.lease(20)
        assert [r.fp for r in got[:4]] == edge
        g = got[4]
        assert (g.url, g.depth, g.referrer, g.method, g.priority, g.retries, g.meta,
                g.headers, g.body, g.dont_filter, g.fp) == (
            full.url, 3, "http://h/", "POST", 0, 2, {"k": [1, "x"]}, {"X-A": "b"}, b"a=1",
            True, full.fp)
        p = got[5]
        assert (p.url, p.depth, p.referrer, p.method, p.meta, p.headers, p.body,
                p.dont_filter, p.callback, p.cookies, p.auth) == (
            "http://h/plain", 1, None, "GET", None, None, b"", False, None, None, None)
        await f.close()

    asyncio.run(first())
    asyncio.run(second())
    (spider,) = rows_in(db, "SELECT spider FROM requests WHERE url = 'http://h/form'")[0]
    assert json.loads(spider) == {"headers": {"X-A": "b"}, "dont_filter": True}
    assert rows_in(db, "SELECT spider, meta, body FROM requests WHERE url = 'http://h/plain'") \
        == [(None, None, None)]


def test_requests_found_after_a_checkpoint_are_leased_once_in_order(tmp_path: Path) -> None:
    """Rows committed are leased from the file, later ones from memory: each
    once, in the order found, across the boundary."""

    async def go() -> list[str]:
        f = SqliteFrontier(tmp_path / "s.db")
        await f.add([Request(f"http://h/{i}") for i in range(3)])
        await f.checkpoint(None)
        await f.add([Request(f"http://h/{i}") for i in range(3, 5)])
        got = [r.url for r in await f.lease(1)]
        await f.checkpoint(None)
        assert not f._mem  # committed rows are read from the file: RAM holds none of them
        await f.add([Request("http://h/5")])
        got += [r.url for r in await f.lease(2)]
        got += [r.url for r in await f.lease(10)]
        await f.add([Request("http://h/6")])
        got += [r.url for r in await f.lease(10)]
        await f.close()
        return got

    assert asyncio.run(go()) == [f"http://h/{i}" for i in range(7)]


def test_a_state_resumes_only_into_the_outputs_it_was_written_with(tmp_path: Path) -> None:
    """Word for word, as ``loopcrawl crawl`` prints them (exit 2): another
    output for a state that has done work, or an output for one that wrote
    none; before any work, the new outputs are taken; marks in the order asked."""
    db, a, b = tmp_path / "s.db", str(tmp_path / "a.jsonl"), str(tmp_path / "b.csv")

    async def work(f: SqliteFrontier, url: str) -> None:
        await f.add([Request(url)])
        (r,) = await f.lease(1)
        await f.ack(r, rec(r))
        await f.checkpoint(None)

    async def go() -> None:
        nothing = tmp_path / "none.db"
        f = SqliteFrontier(nothing)
        assert f.bind_outputs([]) == []
        await work(f, "http://h/0")
        await f.close()
        with SqliteFrontier(nothing) as f, pytest.raises(StateError) as got:
            f.bind_outputs([a, b])
        assert str(got.value) == (f"{nothing} holds a crawl that wrote no output; its pages "
                                  f"would be missing from {a}, {b}: start a new state file")
        # Work is work even if every page failed: the outputs stay the state's.
        failed = tmp_path / "failed.db"
        f = SqliteFrontier(failed)
        assert f.bind_outputs([a]) == [None]
        await f.add([Request("http://h/x")])
        (r,) = await f.lease(1)
        await f.ack(r, rec(r, error="timeout"))
        await f.checkpoint(None)
        await f.close()
        with SqliteFrontier(failed) as f, pytest.raises(StateError) as got:
            f.bind_outputs([b])
        assert str(got.value) == (f"{failed} belongs to the crawl writing {a}; pass -o {a} "
                                  "to resume it (or use a new state file)")

        f = SqliteFrontier(db)
        assert f.bind_outputs([b]) == [None]
        assert f.bind_outputs([a, b]) == [None, None]  # nothing done yet: these now
        await work(f, "http://h/1")
        await f.close()
        with SqliteFrontier(db) as f:
            assert f.bind_outputs([b, a]) == [None, None]  # the same two, any order
            for other in ([a], [b], [a, b, str(tmp_path / "c.jsonl")]):
                with pytest.raises(StateError) as got:
                    f.bind_outputs(other)
                assert str(got.value) == (f"{db} belongs to the crawl writing {a} and {b}; "
                                          f"pass -o {a} and {b} to resume it (or use a new "
                                          "state file)")

    asyncio.run(go())
    assert json.loads(meta_of(db)["outputs"]) == {a: None, b: None}


def test_settings_that_differ_from_the_last_run_are_named_and_seeds_add_up(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    first = Settings(seeds=("http://h/b", "http://h/a"), depth=2, max_pages=10)
    with SqliteFrontier(db) as f:
        assert f.note_settings(first) == []
    with SqliteFrontier(db) as f:
        assert f.note_settings(first) == []
        changed = Settings(seeds=("http://h/c",), scope="domain", allow=("x",), deny=("y",),
                           depth=3, max_pages=None, obey_robots=False, user_agent="ua/1")
        assert f.note_settings(changed) == ["scope", "allow", "deny", "depth", "max_pages",
                                            "obey_robots", "user_agent"]
    assert json.loads(meta_of(db)["settings"]) == {
        "seeds": ["http://h/a", "http://h/b", "http://h/c"], "scope": "domain",
        "allow": ["x"], "deny": ["y"], "depth": 3, "max_pages": None, "obey_robots": False,
        "user_agent": "ua/1"}


def test_recrawl_failed_queues_every_failed_request_again_and_commits_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def first() -> None:
        f = SqliteFrontier(db)
        await f.add([Request("http://a.test/ok"), Request("http://a.test/bad"),
                     Request("http://b.test/bad", priority=3), Request("http://b.test/denied"),
                     Request("http://c.test/later")])
        got = await f.lease(4)
        for r in got:
            await f.ack(r, rec(r, error=None if r.url.endswith("ok") else
                               "robots_denied" if r.url.endswith("denied") else "timeout"))
        await f.checkpoint(None)
        await f.close()

    asyncio.run(first())
    with SqliteFrontier(db) as f:
        assert f.requeue_failed() == 2
        st = asyncio.run(f.statistics())
        assert (st.queued, st.done) == (3, 2)  # added to the one still queued; 2 done left
        assert [r.url for r in asyncio.run(f.lease(5))] == ["http://b.test/bad",
                                                            "http://a.test/bad",
                                                            "http://c.test/later"]
    # Committed at once, with the hosts' counts: a kill now keeps them queued.
    assert sorted(rows_in(db, "SELECT host, queued, done, failed FROM hosts")) == [
        ("a.test", 1, 1, 0), ("b.test", 1, 1, 0), ("c.test", 1, 0, 0)]
    assert rows_in(db, "SELECT url, error, retries FROM requests WHERE state = 0 ORDER BY id") \
        == [("http://a.test/bad", None, 0), ("http://b.test/bad", None, 0),
            ("http://c.test/later", None, 0)]

    async def second() -> None:
        f = SqliteFrontier(db)
        st = await f.statistics()
        assert (st.queued, st.done) == (3, 2)
        assert f.requeue_failed() == 0
        assert [r.url for r in await f.lease(5)] == ["http://b.test/bad", "http://a.test/bad",
                                                     "http://c.test/later"]
        await f.close()

    asyncio.run(second())
    with SqliteFrontier(db) as f:
        got = asyncio.run(f.lease(5))
        assert [r.url for r in got] == ["http://b.test/bad", "http://a.test/bad",
                                        "http://c.test/later"]
        assert asyncio.run(f.statistics()).queued == 0


@pytest.mark.parametrize("how", ["begin", "update"])
def test_recrawl_failed_that_cannot_be_written_is_one_state_error_and_changes_nothing(
        tmp_path: Path, how: str) -> None:
    """``--recrawl-failed`` on a state SQLite will not write: its BEGIN refused
    (the connection is read-only), or a statement refused inside the
    transaction (a trigger raising ABORT, which leaves the transaction open):
    one StateError word for word, the transaction ended at once (another writer
    gets the lock while the state is still open), nothing requeued."""
    db = tmp_path / "s.db"

    async def first() -> None:
        f = SqliteFrontier(db)
        await f.add([Request("http://h/bad")])
        (r,) = await f.lease(1)
        await f.ack(r, rec(r, error="timeout"))
        await f.checkpoint(None)
        await f.close()

    asyncio.run(first())
    with SqliteFrontier(db) as f:
        assert f._con is not None
        if how == "begin":
            f._con.execute("PRAGMA query_only = 1")
            why = "attempt to write a readonly database"
        else:
            f._con.execute("CREATE TEMP TRIGGER no BEFORE UPDATE ON hosts "
                           "BEGIN SELECT RAISE(ABORT, 'hosts are read-only here'); END")
            why = "hosts are read-only here"
        with pytest.raises(StateError) as got:
            f.requeue_failed()
        assert str(got.value) == f"cannot write {db}: {why}"
        probe = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
        st = asyncio.run(f.statistics())
        assert (st.queued, st.done) == (0, 1)
    assert rows_in(db, "SELECT url, state, error FROM requests") == [("http://h/bad", 2, "timeout")]
    assert rows_in(db, "SELECT * FROM hosts") == [("h", 0, 0, 1)]


def test_a_request_that_cannot_be_kept_stops_the_checkpoint_word_for_word(tmp_path: Path) -> None:
    class Spiderish:
        def parse(self, response: object) -> None: ...

    def free(response: object) -> None: ...

    async def go(r: Request) -> str:
        f = SqliteFrontier(tmp_path / f"{len(list(tmp_path.iterdir()))}.db")
        try:
            await f.add([r])
            with pytest.raises(StateError) as got:
                await f.checkpoint(None)
            return str(got.value)
        finally:
            await f.close()

    assert asyncio.run(go(Request("http://h/a", callback=free))) == (
        f"the callback of http://h/a ({free!r}) is not a method of the spider, so it "
        "cannot be kept in a state file")
    thing = object()
    assert asyncio.run(go(Request("http://h/b", callback=Spiderish().parse,
                                  cb_kwargs={"n": thing}))) == (
        "the request for http://h/b cannot be kept in a state file (cb_kwargs must be JSON "
        "values): Type is not JSON serializable: object")
    assert asyncio.run(go(Request("http://h/c", meta={"n": thing}))) == (
        "the request for http://h/c cannot be kept in a state file (meta must be JSON "
        "values): Type is not JSON serializable: object")


class BrokenDisk(JsonlWriter):
    """A real JSONL output on a disk whose fsync fails (EIO), as no
    ``OutputError``: what a checkpoint meets from an output it does not know."""

    def fsync(self) -> None:
        raise OSError(5, "Input/output error")


def test_any_other_failure_of_the_commit_is_one_state_error_and_sticks(tmp_path: Path) -> None:
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"

    async def go() -> None:
        f = SqliteFrontier(db)
        w = BrokenDisk(str(out))
        try:
            await f.add([Request("http://h/a")])
            with pytest.raises(StateError) as got:
                await f.checkpoint(w)
            assert str(got.value) == f"cannot write {db}: [Errno 5] Input/output error"
            with pytest.raises(StateError) as again:  # the state is stuck at the last one
                await f.checkpoint(None)
            assert again.value is got.value
        finally:
            await f.close()
            with contextlib.suppress(OSError):
                w.close()

    asyncio.run(go())
    assert rows_in(db, "SELECT count(*) FROM requests") == [(0,)]



@pytest.mark.parametrize(("limit", "why"), [
    ("pages", "database or disk is full"), ("length", "string or blob too big")])
def test_an_sqlite_error_inside_the_commit_rolls_it_back_and_keeps_the_last_checkpoint(
        tmp_path: Path, limit: str, why: str) -> None:
    """SQLite fails inside the checkpoint's transaction, the two ways it can:
    the file may not grow (SQLITE_FULL, as on a full disk: SQLite rolls the
    whole transaction back itself, and our ROLLBACK finds none to end), or it
    refuses one statement (a URL over the connection's length limit, 1 GB by
    default) and leaves the transaction open. Either way the transaction is
    ended at once (the file's write lock is free while the crawl is still
    open), the error names the state file word for word and sticks, and the
    file holds exactly the last good checkpoint."""
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"

    async def go() -> int:
        f = SqliteFrontier(db)
        (mark,) = f.bind_outputs([str(out)])
        w = JsonlWriter(str(out), resume_at=mark or 0)
        try:
            await f.add([Request("http://h/0"), Request("http://h/1")])
            (r0,) = await f.lease(1)
            w.write({"url": r0.url})
            await f.ack(r0, rec(r0))
            await f.checkpoint(w)  # the last good one
            good = w.tell()
            con = f._con
            assert con is not None
            if limit == "pages":
                pages = con.execute("PRAGMA page_count").fetchone()[0]
                con.execute(f"PRAGMA max_page_count = {pages}")
            else:
                con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
            # Short rows first (written inside the transaction), then long ones.
            await f.add([Request(f"http://h/{i}") for i in range(2, 12)]
                        + [Request(f"http://h/{'x' * 2000}/{i}") for i in range(40)])
            (r1,) = await f.lease(1)
            w.write({"url": r1.url})
            await f.ack(r1, rec(r1, error="http_error"))
            with pytest.raises(StateError) as got:
                await f.checkpoint(w)
            assert str(got.value) == f"cannot write the crawl state {db}: {why}"
            probe = sqlite3.connect(db, timeout=0, isolation_level=None)
            try:  # no transaction left open: another writer gets the lock at once
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            finally:
                probe.close()
            with pytest.raises(StateError) as again:
                await f.checkpoint(w)
            assert again.value is got.value
            return good
        finally:
            await f.close()
            w.close()

    good = asyncio.run(go())
    assert rows_in(db, "SELECT id, url, state, error FROM requests ORDER BY id") == [
        (1, "http://h/0", 1, None), (2, "http://h/1", 0, None)]
    assert rows_in(db, "SELECT * FROM hosts") == [("h", 1, 1, 0)]
    m = meta_of(db)
    assert (json.loads(m["outputs"]), m["pages"], m["in_flight"]) == ({str(out): good}, "1", "0")
    with SqliteFrontier(db) as f:
        assert (f.pages_done, f.outputs) == (1, {str(out): good})


def test_a_crawl_checkpoints_every_interval_while_it_runs(pages: PageServer,
                                                          tmp_path: Path) -> None:
    """The crawl runs the state's periodic checkpoints beside its workers: a
    page done is in the file (as another process reads it) while the next one
    is still being fetched, not only when the crawl ends."""
    from loopcrawl import Crawler

    pages.add("/", links=["/slow"])
    pages.add("/slow", delay=0.5)
    db = tmp_path / "s.db"
    done_in_file: list[str] = []

    async def go() -> None:
        f = SqliteFrontier(db, checkpoint_interval=0.05)
        try:
            await Crawler(Settings(seeds=(pages.url + "/",), obey_robots=False), frontier=f,
                          on_record=lambda r: done_in_file.append(meta_of(db)["pages"])).run()
        finally:
            await f.close()

    asyncio.run(go())
    assert done_in_file == ["0", "1"]  # at /slow's record, / was checkpointed already
    assert meta_of(db)["pages"] == "2"


def test_a_crawl_with_a_state_refuses_an_output_it_cannot_cut_back(pages: PageServer,
                                                                   tmp_path: Path) -> None:
    """A crawler given a persistent frontier and outputs that cannot be cut
    back to a checkpoint (``loopcrawl crawl`` refuses them earlier, from
    their names) refuses them word for word before any request."""
    from loopcrawl import ConfigError, Crawler
    from loopcrawl.outputs import Output

    class Stream(Output):  # like Parquet: written once, never cut back
        format, roles = "stream", frozenset({"records"})

        def __init__(self, path: str) -> None:
            self.path = path

    pages.add("/")
    a, b = str(tmp_path / "a.stream"), str(tmp_path / "b.stream")
    outs = [JsonlWriter(str(tmp_path / "ok.jsonl")), Stream(a), Stream(b)]

    async def go() -> None:
        f = SqliteFrontier(tmp_path / "s.db")
        try:
            await Crawler(Settings(seeds=(pages.url + "/",)), frontier=f, outputs=outs).run()
        finally:
            await f.close()
            for o in outs:
                o.close()

    with pytest.raises(ConfigError) as got:
        asyncio.run(go())
    assert str(got.value) == (
        f"{a}, {b}: this output cannot be cut back to a checkpoint, so a crawl with a "
        "persistent state cannot write it; formats that can: jsonl, json, csv, sqlite, warc")
    assert pages.log == []
