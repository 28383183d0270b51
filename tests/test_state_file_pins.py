"""The state file itself (``frontier/sqlite/_db.py``) and ``loopcrawl status``
(``frontier/sqlite/status.py``) pinned in-process, on real SQLite files:
what a new file holds (its id, schema, meta rows, WAL, ``synchronous=NORMAL``,
a lock no child process inherits), what a reopened one loads, every refusal
word for word with the file left untouched and nothing held after it, and
what ``status`` reads (counts, in flight, the top hosts and their order, the
outputs' marks, the last checkpoint), with the crawl running and not, as an
object, as ``--json`` and as text. ``tests/test_state.py`` does the same
through subprocesses and real kills; mutmut sees only these."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from loopcrawl import Settings
from loopcrawl.cli import main
from loopcrawl.core.runner import CrawlRun
from loopcrawl.errors import StateError
from loopcrawl.frontier.sqlite import HostCounts, SqliteFrontier, StateStatus, read_status
from loopcrawl.http import FetchRecord, Request
from loopcrawl.outputs import JsonlWriter

from .conftest import PageServer
from .helpers import rows_in

pytestmark = pytest.mark.timeout(60)

APPLICATION_ID = 0x4C435257  # "LCRW"


def rec(r: Request, error: str | None = None) -> FetchRecord:
    return FetchRecord(r.url, r.depth, r.referrer, 0.0, final_url=r.url, status=200, error=error)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def files_beside(path: Path) -> dict[str, bytes]:
    """The file and what lies beside it, less SQLite's empty ``-wal`` and its
    ``-shm``: a read-only open of a WAL-mode database creates them and cannot
    remove them (``status`` on a state at rest, or on a refused WAL file)."""
    out = {}
    for p in path.parent.iterdir():
        if p.name == path.name + "-shm" or (p.name == path.name + "-wal" and not p.stat().st_size):
            continue
        out[p.name] = p.read_bytes()
    return out


def is_locked(path: Path) -> bool:
    """True if some open file description holds ``path``'s ``flock``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def make_state(db: Path, out: Path | None = None) -> tuple[float, float]:
    """A state of three hosts: a.test 3 done, 1 failed, 2 queued; b.test 1
    done, 1 failed (a policy stop counts as done); c.test 1 queued; one claim.
    Checkpointed with a JSONL output of the records, then closed. The time
    around the last checkpoint."""

    async def go() -> tuple[float, float]:
        f = SqliteFrontier(db)
        (mark,) = f.bind_outputs([str(out)]) if out else (None,)
        w = JsonlWriter(str(out), resume_at=mark or 0) if out else None
        urls = [f"http://a.test/{i}" for i in range(6)] + [
            "http://b.test/1",
            "http://b.test/2",
            "http://c.test/1",
        ]
        await f.add([Request(u) for u in urls])
        got = {r.url: r for r in await f.lease(9)}
        errors = {
            "http://a.test/3": "timeout",
            "http://b.test/2": "http_status",
            "http://b.test/1": "robots_denied",
        }
        for u in (
            "http://a.test/0",
            "http://a.test/1",
            "http://a.test/2",
            "http://a.test/3",
            "http://b.test/1",
            "http://b.test/2",
        ):
            if w is not None:
                w.write({"url": u})
            await f.ack(got[u], rec(got[u], errors.get(u)))
        for u in ("http://a.test/4", "http://a.test/5", "http://c.test/1"):
            await f.release(got[u])
        assert await f.mark_seen(12345)  # a redirect target fetched inline
        t0 = time.time()
        await f.checkpoint(w)
        t1 = time.time()
        await f.close()
        if w is not None:
            w.close()
        return t0, t1

    return asyncio.run(go())


# -- a new state file ------------------------------------------------------------


def test_a_new_state_file_holds_its_id_schema_and_meta(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    old = os.umask(0o022)
    try:
        t0 = time.time()
        f = SqliteFrontier(db)
        t1 = time.time()
    finally:
        os.umask(old)
    with f:
        assert db.stat().st_mode & 0o777 == 0o644
        assert rows_in(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
        assert rows_in(db, "PRAGMA journal_mode") == [("wal",)]
        # NORMAL (1): a commit is not fsynced; a kill loses nothing, a power cut
        # at most the last checkpoints. Per connection, so asked of the writer.
        assert f._con is not None
        assert f._con.execute("PRAGMA synchronous").fetchone() == (1,)
        meta = dict(rows_in(db, "SELECT key, value FROM meta"))
        assert set(meta) == {"schema", "created_at", "pages", "pid"}
        assert (meta["schema"], meta["pages"], meta["pid"]) == ("1", "0", str(os.getpid()))
        assert t0 <= float(meta["created_at"]) <= t1
        assert sorted(
            rows_in(
                db, "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex%'"
            )
        ) == [
            ("index", "ranked"),
            ("table", "claims"),
            ("table", "hosts"),
            ("table", "meta"),
            ("table", "requests"),
            ("table", "robots"),
        ]
        assert [c[1] for c in rows_in(db, "PRAGMA table_info(requests)")] == [
            "id",
            "fp",
            "url",
            "depth",
            "referrer",
            "method",
            "priority",
            "retries",
            "meta",
            "state",
            "error",
            "spider",
            "body",
        ]
        st = asyncio.run(f.statistics())
        assert (st.queued, st.leased, st.done, st.seen) == (0, 0, 0, 0)
        assert f.pages_done == 0 and f.outputs == {} and f.settings_json is None


def test_no_child_process_inherits_the_lock(tmp_path: Path) -> None:
    """A process started while the crawl holds the file (close_fds=False, as
    a fork and exec would) does not keep it locked after the crawl ends."""
    db = tmp_path / "s.db"
    f = SqliteFrontier(db)
    child = subprocess.Popen(["sleep", "30"], close_fds=False)
    try:
        f.__exit__()
        assert not is_locked(db)
        with SqliteFrontier(db):
            pass
    finally:
        child.kill()
        child.wait()


def test_a_state_file_reopens_with_its_counts_seen_set_and_pages(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    make_state(db)

    async def go() -> None:
        f = SqliteFrontier(db)
        # 3 queued (a leased request is never written), 6 done or failed, 9 + 1 claim seen.
        st = await f.statistics()
        assert (st.queued, st.leased, st.done, st.seen) == (3, 0, 6, 10)
        assert f.pages_done == 5  # robots_denied does not count toward --max-pages
        assert not await f.mark_seen(12345)  # the claim
        assert await f.add([Request("http://a.test/0"), Request("http://d.test/1")]) == 1
        got = await f.lease(10)  # the file's queue in order, then the new one
        assert [r.url for r in got] == [
            "http://a.test/4",
            "http://a.test/5",
            "http://c.test/1",
            "http://d.test/1",
        ]
        await f.ack(got[0], rec(got[0]))
        assert f.pages_done == 6  # the runs before, and this one's
        await f.checkpoint(None)
        await f.close()

    asyncio.run(go())
    assert rows_in(db, "SELECT id, url FROM requests WHERE id > 8") == [
        (9, "http://c.test/1"),
        (10, "http://d.test/1"),
    ]
    assert rows_in(db, "SELECT value FROM meta WHERE key = 'pages'") == [("6",)]


def test_a_reopened_state_knows_the_last_runs_settings(tmp_path: Path) -> None:
    """The settings a run recorded are what the next run compares with."""
    db = tmp_path / "s.db"
    with SqliteFrontier(db) as f:
        assert f.note_settings(Settings(seeds=("http://h/",), depth=2)) == []
    with SqliteFrontier(db) as f:
        assert f.note_settings(Settings(seeds=("http://h/",), depth=3)) == ["depth"]


def test_row_ids_count_from_one_without_a_gap_across_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def run(url: str) -> None:
        f = SqliteFrontier(db)
        await f.add([Request(url)])
        await f.checkpoint(None)
        await f.close()

    asyncio.run(run("http://h/1"))
    asyncio.run(run("http://h/2"))
    assert rows_in(db, "SELECT id, url FROM requests") == [(1, "http://h/1"), (2, "http://h/2")]


def test_ranked_requests_are_loaded_on_open_in_order_and_acked_by_their_row(
    tmp_path: Path,
) -> None:
    """A spider's requests with a priority, queued when the state was closed:
    FIFO within a priority (b was found before a), and each ack marks its own
    row done."""
    db = tmp_path / "s.db"

    async def first() -> None:
        f = SqliteFrontier(db)
        await f.add(
            [
                Request("http://h/b", priority=5),
                Request("http://h/a", priority=5),
                Request("http://h/low", priority=-1),
                Request("http://h/plain"),
            ]
        )
        await f.checkpoint(None)
        await f.close()

    async def second() -> None:
        f = SqliteFrontier(db)
        got = await f.lease(10)
        assert [r.url for r in got] == [
            "http://h/b",
            "http://h/a",
            "http://h/plain",
            "http://h/low",
        ]
        for r in got:
            await f.ack(r, rec(r))
        await f.checkpoint(None)
        await f.close()

    asyncio.run(first())
    asyncio.run(second())
    assert rows_in(db, "SELECT url, state FROM requests ORDER BY id") == [
        ("http://h/b", 1),
        ("http://h/a", 1),
        ("http://h/low", 1),
        ("http://h/plain", 1),
    ]


def test_a_lock_on_descriptor_0_is_let_go(tmp_path: Path) -> None:
    """A crawl started with its standard input closed (cron, ``<&-``) gets
    descriptor 0 for the lock; closing the state lets go of it all the same."""
    db = tmp_path / "s.db"
    saved = os.dup(0)
    os.close(0)
    try:
        f = SqliteFrontier(db)
        try:
            assert os.readlink("/proc/self/fd/0") == str(db)
        finally:
            f.__exit__()
        assert not is_locked(db)
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_closing_twice_closes_nothing_else(tmp_path: Path) -> None:
    f = SqliteFrontier(tmp_path / "s.db")
    asyncio.run(f.close())
    saved = os.dup(1)
    try:
        fds = sorted(os.listdir("/proc/self/fd"))
        f.__exit__()  # safe after close()
        assert sorted(os.listdir("/proc/self/fd")) == fds
    finally:
        try:
            os.fstat(1)
        except OSError:
            os.dup2(saved, 1)
        os.close(saved)


# -- refusals -------------------------------------------------------------------


def _sqlite(path: Path, *sql: str) -> None:
    con = sqlite3.connect(path)
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


def _corrupt(path: Path) -> None:
    """A real state with its fourth page overwritten."""

    async def go() -> None:
        f = SqliteFrontier(path)
        await f.add([Request(f"http://h{i % 3}.test/{i}") for i in range(3000)])
        await f.checkpoint(None)
        await f.close()

    asyncio.run(go())
    data = bytearray(path.read_bytes())
    data[3 * 4096 : 4 * 4096] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))


UNTOUCHED = "it was left untouched"
REFUSED: dict[str, tuple[Callable[[Path], object], str]] = {
    "not SQLite": (
        lambda p: p.write_text("hello"),
        "{p} is not a loopcrawl state file (not an SQLite database); " + UNTOUCHED,
    ),
    "SQLite's magic less its NUL": (
        lambda p: p.write_bytes(b"SQLite format 3!" + bytes(200)),
        "{p} is not a loopcrawl state file (not an SQLite database); " + UNTOUCHED,
    ),
    "another application's tables": (
        lambda p: _sqlite(
            p, "CREATE TABLE notes (body TEXT)", "INSERT INTO notes VALUES ('precious')"
        ),
        "{p} is an SQLite database of another application, not a loopcrawl state file; "
        + UNTOUCHED,
    ),
    "another application's id, no table": (
        lambda p: _sqlite(p, "PRAGMA application_id = 1234"),
        "{p} is an SQLite database of another application, not a loopcrawl state file; "
        + UNTOUCHED,
    ),
    "our id, no table": (
        lambda p: _sqlite(p, f"PRAGMA application_id = {APPLICATION_ID}"),
        "{p} is corrupt or unreadable (no such table: meta); " + UNTOUCHED,
    ),
    "schema 2": (
        lambda p: _sqlite(
            p,
            f"PRAGMA application_id = {APPLICATION_ID}",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO meta VALUES ('schema', '2')",
        ),
        "{p} has state schema 2, this loopcrawl reads 1; " + UNTOUCHED,
    ),
    "no schema": (
        lambda p: _sqlite(
            p,
            f"PRAGMA application_id = {APPLICATION_ID}",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
        "{p} has state schema None, this loopcrawl reads 1; " + UNTOUCHED,
    ),
    "corrupt": (
        _corrupt,
        "{p} is corrupt (Page 4: btreeInitPage() returns error code 11); " + UNTOUCHED,
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_file_that_is_not_a_sound_state_is_refused_untouched(tmp_path: Path, case: str) -> None:
    """By the crawl and by ``status``: one message, word for word (one line),
    the file and its directory as they were, no descriptor or lock kept."""
    make, message = REFUSED[case]
    p = tmp_path / "s.db"
    make(p)
    before = files_beside(p)
    fds = open_fds()
    for opener in (SqliteFrontier, lambda p: read_status(str(p))):
        with pytest.raises(StateError) as got:
            opener(p)
        assert str(got.value) == message.format(p=p)
        assert files_beside(p) == before
        assert open_fds() == fds and not is_locked(p)


def test_what_a_kill_during_creation_leaves_is_empty_to_status_and_adopted(tmp_path: Path) -> None:
    """An empty file, or an SQLite file without a table (the creation rolled
    back): ``status`` says no crawl has checkpointed into it; a crawl adopts it."""
    empty, blank = tmp_path / "empty.db", tmp_path / "blank.db"
    empty.touch()
    _sqlite(blank, "VACUUM")
    for p in (empty, blank):
        with pytest.raises(StateError) as got:
            read_status(str(p))
        assert str(got.value) == f"{p} is empty: no crawl has checkpointed into it yet"
        with SqliteFrontier(p):
            pass
        assert rows_in(p, "PRAGMA application_id") == [(APPLICATION_ID,)]
    missing = tmp_path / "missing.db"
    with pytest.raises(StateError) as got:
        read_status(str(missing))
    assert str(got.value) == f"{missing} does not exist"
    assert not missing.exists()


def test_a_state_file_that_cannot_be_opened_or_locked_is_one_message(tmp_path: Path) -> None:
    nowhere = tmp_path / "no" / "s.db"
    with pytest.raises(StateError) as got:
        SqliteFrontier(nowhere)
    assert str(got.value) == f"cannot open {nowhere}: No such file or directory"
    with pytest.raises(StateError) as got:
        SqliteFrontier(tmp_path)
    assert str(got.value) == f"{tmp_path} is a directory, not a state file"
    # Held by a crawl that has not written its pid yet (an empty file, or the
    # schema made and the pid not yet written): no pid named, ``status``
    # knows of none, and the descriptor opened to try is closed again.
    empty, unnamed = tmp_path / "empty.db", tmp_path / "unnamed.db"
    with SqliteFrontier(unnamed):
        pass
    _sqlite(unnamed, "DELETE FROM meta WHERE key = 'pid'")
    for held in (empty, unnamed):
        fd = os.open(held, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            fds = open_fds()
            with pytest.raises(StateError) as got:
                SqliteFrontier(held)
            assert str(got.value) == (
                f"{held} is in use by another crawl; wait for it to end, or stop it, "
                "before resuming"
            )
            assert open_fds() == fds
            if held is unnamed:
                st = read_status(str(held))
                assert (st.running_pid, st.in_flight, st.checkpoint_at) == (None, 0, None)
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    ("damage", "crawl_says", "status_says"),
    [
        (
            "DROP TABLE hosts",
            "cannot use {p}: no such table: hosts",
            "cannot read {p}: no such table: hosts",
        ),
        (
            "ALTER TABLE requests RENAME COLUMN body TO payload",
            "cannot read {p}: no such column: body",
            None,
        ),
    ],
)
def test_a_damaged_state_is_one_message_and_lets_go_of_the_file(
    tmp_path: Path, damage: str, crawl_says: str, status_says: str | None
) -> None:
    """A state of ours missing a table or a column: one message naming the
    file, and nothing held after it (trying again gives the same message,
    not "in use")."""
    p = tmp_path / "s.db"
    make_state(p)
    _sqlite(p, damage)
    fds = open_fds()
    for _ in range(2):
        with pytest.raises(StateError) as got:
            SqliteFrontier(p)
        assert str(got.value) == crawl_says.format(p=p)
        assert open_fds() == fds and not is_locked(p)
    if status_says is not None:
        with pytest.raises(StateError) as got:
            read_status(str(p))
        assert str(got.value) == status_says.format(p=p)


def test_a_state_whose_name_holds_uri_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only opens (``status``, the pid in the in-use refusal, ``loopcrawl
    report``) read this file, given relative, and create no other: a ``#`` or
    ``?`` once cut the name short (``crawl #1?%41.db`` read as ``crawl ``)."""
    from loopcrawl.report import load_stats

    name = "crawl #1?%41.db"
    make_state(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    st = read_status(name)
    assert (st.queued, st.done, st.failed, st.seen) == (3, 4, 2, 10)
    assert load_stats(name)["records"] == 6
    with SqliteFrontier(name), pytest.raises(StateError) as got:
        SqliteFrontier(name)
    assert str(got.value) == (
        f"{name} is in use by another crawl (pid {os.getpid()}); wait for it to end, "
        "or stop it, before resuming"
    )
    assert {p.name for p in tmp_path.iterdir()} <= {name, name + "-wal", name + "-shm"}


def test_a_path_longer_than_sqlite_takes_is_one_message(tmp_path: Path) -> None:
    """A state file SQLite cannot open though the OS can (its path past
    SQLite's 512 bytes): one message from the crawl and from ``status``."""
    made = tmp_path / "s.db"
    make_state(made)
    deep = tmp_path.joinpath(*["d" * 200] * 3)
    deep.mkdir(parents=True)
    p = deep / "s.db"
    p.write_bytes(made.read_bytes())
    with pytest.raises(StateError) as got:
        SqliteFrontier(p)
    assert str(got.value) == f"cannot use {p}: unable to open database file"
    with pytest.raises(StateError) as got:
        read_status(str(p))
    assert str(got.value) == f"cannot read {p}: unable to open database file"
    assert not is_locked(p)


# -- loopcrawl status -----------------------------------------------------------

STATUS_KEYS = [
    "path",
    "running_pid",
    "queued",
    "in_flight",
    "done",
    "failed",
    "seen",
    "outputs",
    "checkpoint_at",
    "top_hosts",
]


def test_status_of_a_state_at_rest(tmp_path: Path) -> None:
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    t0, t1 = make_state(db, out)
    before = files_beside(db)
    st = read_status(str(db))
    assert st.checkpoint_at is not None and t0 <= st.checkpoint_at <= t1
    assert st == StateStatus(
        path=str(db),
        running_pid=None,
        queued=3,
        in_flight=0,
        done=4,
        failed=2,
        seen=10,
        outputs={str(out): out.stat().st_size},
        checkpoint_at=st.checkpoint_at,
        top_hosts=(
            HostCounts("a.test", 2, 3, 1),
            HostCounts("b.test", 0, 1, 1),
            HostCounts("c.test", 1, 0, 0),
        ),
    )
    d = st.to_dict()
    assert list(d) == STATUS_KEYS
    assert d == {
        "path": str(db),
        "running_pid": None,
        "queued": 3,
        "in_flight": 0,
        "done": 4,
        "failed": 2,
        "seen": 10,
        "outputs": {str(out): out.stat().st_size},
        "checkpoint_at": st.checkpoint_at,
        "top_hosts": [
            {"host": "a.test", "queued": 2, "done": 3, "failed": 1},
            {"host": "b.test", "queued": 0, "done": 1, "failed": 1},
            {"host": "c.test", "queued": 1, "done": 0, "failed": 0},
        ],
    }
    assert json.loads(json.dumps(d)) == d
    assert files_beside(db) == before


def test_status_of_a_killed_crawls_state_writes_nothing(tmp_path: Path) -> None:
    """A crawl killed after a checkpoint leaves its last commits in the WAL:
    ``status`` counts them, and leaves the WAL to the crawl's recovery (a
    read-write open would fold it into the file as it closed)."""
    db, dead = tmp_path / "s.db", tmp_path / "dead"
    dead.mkdir()

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request(f"http://h.test/{i}") for i in range(5)])
        got = await f.lease(2)
        await f.ack(got[0], rec(got[0]))
        await f.checkpoint(None)
        for name in ("s.db", "s.db-wal"):  # what a kill leaves
            (dead / name).write_bytes((tmp_path / name).read_bytes())
        await f.close()

    asyncio.run(go())
    before = {p.name: p.read_bytes() for p in dead.iterdir()}
    assert before["s.db-wal"]
    st = read_status(str(dead / "s.db"))
    assert (st.running_pid, st.queued, st.done, st.seen) == (None, 4, 1, 5)
    assert {p.name: p.read_bytes() for p in dead.iterdir() if p.name != "s.db-shm"} == before


def test_status_before_the_first_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteFrontier(db):
        held = read_status(str(db))
    assert held == StateStatus(str(db), os.getpid(), 0, 0, 0, 0, 0, {}, None, ())
    assert read_status(str(db)) == StateStatus(str(db), None, 0, 0, 0, 0, 0, {}, None, ())


def test_status_while_a_crawl_holds_the_file(tmp_path: Path) -> None:
    """The running crawl's pid and its leases as of its last checkpoint (in
    flight, out of queued); the crawl keeps its lock and goes on. Once it
    ends, what it held is queued again."""
    db = tmp_path / "s.db"

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add([Request(f"http://h.test/{i}") for i in range(3)])
        first = await f.lease(2)
        await f.checkpoint(None)
        st = read_status(str(db))
        assert (st.running_pid, st.queued, st.in_flight, st.done, st.seen) == (
            os.getpid(),
            1,
            2,
            0,
            3,
        )
        assert st.top_hosts == (HostCounts("h.test", 3, 0, 0),)
        assert is_locked(db)
        with pytest.raises(StateError, match="in use by another crawl"):
            SqliteFrontier(db)
        last = await f.lease(1)
        await f.checkpoint(None)
        st = read_status(str(db))
        assert (st.queued, st.in_flight) == (0, 3)
        await f.ack(first[0], rec(first[0]))
        await f.checkpoint(None)
        st = read_status(str(db))
        assert (st.queued, st.in_flight, st.done) == (0, 2, 1)
        await f.close()
        assert last

    asyncio.run(go())
    st = read_status(str(db))
    assert (st.running_pid, st.queued, st.in_flight, st.done) == (None, 2, 0, 1)


def test_status_shows_the_top_ten_hosts_busiest_first_then_by_name(tmp_path: Path) -> None:
    """Busiest by queued + done + failed; ties by name; ten unless told."""
    db = tmp_path / "s.db"
    # host -> (queued, done, failed)
    want = {
        "q.test": (5, 0, 0),
        "d.test": (0, 4, 0),
        "f.test": (0, 0, 3),
        "m.test": (1, 1, 1),
        **{f"t{i:02}.test": (0, 1, 1) for i in range(8, -1, -1)},
    }

    async def go() -> None:
        f = SqliteFrontier(db)
        await f.add(
            [Request(f"http://{host}/{i}") for host, n in want.items() for i in range(sum(n))]
        )
        for r in await f.lease(100):
            _, d, fl = want[r.url.split("/")[2]]
            i = int(r.url.rsplit("/", 1)[1])
            if i < d:
                await f.ack(r, rec(r))
            elif i < d + fl:
                await f.ack(r, rec(r, "timeout"))
            else:
                await f.release(r)
        await f.checkpoint(None)
        await f.close()

    asyncio.run(go())
    order = ["q.test", "d.test", "f.test", "m.test", *[f"t{i:02}.test" for i in range(9)]]
    top = read_status(str(db)).top_hosts
    assert top == tuple(HostCounts(h, *want[h]) for h in order[:10])
    assert read_status(str(db), top=3).top_hosts == top[:3]
    st = read_status(str(db), top=20)
    assert [h.host for h in st.top_hosts] == order
    assert (st.queued, st.done, st.failed) == (6, 14, 13)


def test_status_command_as_text_and_json(tmp_path: Path) -> None:
    """``loopcrawl status --state FILE`` (the command, in-process): its lines
    word for word, ``--json`` as ``to_dict``, a refusal as one line, exit 2."""
    db, out = tmp_path / "s.db", tmp_path / "o.jsonl"

    async def go() -> None:
        f = SqliteFrontier(db)
        (mark,) = f.bind_outputs([str(out)])
        w = JsonlWriter(str(out), resume_at=mark or 0)
        await f.add(
            [Request(f"http://big.test/{i}") for i in range(1500)] + [Request("http://a.test/")]
        )
        for r in await f.lease(1200):
            w.write({"url": r.url, "pad": "x" * 10})
            await f.ack(r, rec(r))
        await f.checkpoint(w)
        await f.close()
        w.close()

    asyncio.run(go())
    size = out.stat().st_size
    assert size > 1000
    r = CliRunner().invoke(main, ["status", "--state", str(db)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert re.fullmatch(
        rf"     state  {re.escape(str(db))}  \(not running; last checkpoint "
        r"\d+ s ago\)",
        lines[0],
    ), lines[0]
    width = len("big.test")
    assert lines[1:] == [
        f"    output  {out}  ({size:,} bytes)",
        "    queued  301",
        " in flight  0",
        "      done  1,200",
        "    failed  0",
        "      seen  1,501",
        f" top hosts  {'':{width}}      queued       done   failed",
        "            big.test         300      1,200        0",
        "            a.test             1          0        0",
    ]
    r = CliRunner().invoke(main, ["status", "--state", str(db), "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == read_status(str(db)).to_dict()
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    r = CliRunner().invoke(main, ["status", "--state", str(junk)])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == (
        f"loopcrawl: error: {junk} is not a loopcrawl state file (not an "
        "SQLite database); it was left untouched\n"
    )


def test_status_of_a_real_crawl(pages: PageServer, tmp_path: Path) -> None:
    """A crawl with ``--state`` in-process: status counts what it fetched,
    the output's mark is its size, the host is the server's; the run's own
    totals are read the same way."""
    pages.add("/", links=["/a", "/b", "/missing"])
    pages.add("/a")
    pages.add("/b")
    pages.add("/missing", status=404)
    db, out = tmp_path / "crawl.db", tmp_path / "pages.jsonl"
    result = CrawlRun(
        Settings(seeds=(pages.url + "/",), retries=0), outputs=[str(out)], state=db, signals=False
    ).run()
    st = read_status(str(db))
    assert (st.running_pid, st.queued, st.in_flight, st.done, st.failed, st.seen) == (
        None,
        0,
        0,
        3,
        1,
        4,
    )
    assert st.outputs == {str(out): out.stat().st_size}
    assert len(out.read_bytes().splitlines()) == 4
    assert st.top_hosts == (HostCounts(pages.url.removeprefix("http://"), 0, 3, 1),)
    assert result.totals is not None
    assert (result.totals.done, result.totals.failed, result.totals.queued, result.totals.seen) == (
        3,
        1,
        0,
        4,
    )
