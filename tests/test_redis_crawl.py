"""One crawl shared through Redis (issue 14), end to end, as a user runs it.

``loopcrawl seed`` creates the crawl in a real redis-server, worker processes
(``python -m loopcrawl worker``) crawl the built-in test site, and the
promises are checked where they show: at the server (every page fetched
once, at most the per-host limit in flight across all workers), in the
workers' outputs (their union is the site), and in the exit codes and the
one-line errors. Kept lean: small sites, a short lease, few processes.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from loopcrawl import CrawlRun, Settings
from loopcrawl.frontier import MemoryFrontier
from loopcrawl.frontier.redis.keys import CrawlKeys
from loopcrawl.testsite import ServerThread, Site
from loopcrawl.urls import fingerprint

from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(120)
LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]
LEASE = "2"  # seconds: a killed worker's leases come back this soon


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOPCRAWL, *args], capture_output=True, text=True, timeout=timeout)


def worker(url: str, name: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A worker process writing its records to ``out``."""
    return subprocess.Popen([*LOOPCRAWL, "worker", "--redis", url, "--crawl", name,
                             "-o", str(out), "-q", "--lease-ttl", LEASE, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int]:
    """Wait for the workers to exit by themselves; their exit codes."""
    codes = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("a worker did not exit when the crawl was done") from None
        assert p.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
        codes.append(p.returncode)
    return codes


def records(*outs: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for out in outs if out.exists()
            for line in out.read_bytes().splitlines()]


def fetched(srv: ServerThread) -> collections.Counter[str]:
    return collections.Counter(e.raw_path for e in srv.server.log if e.method == "GET")


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def seed(url: str, name: str, *args: str) -> None:
    r = cli("seed", "--redis", url, "--crawl", name, *args)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def site() -> Iterator[ServerThread]:
    """120 pages, 20 ms a response: a crawl of a few seconds at two in flight."""
    with ServerThread(Site(pages=120, seed=3), latency_ms=20) as srv:
        yield srv


def test_records_carry_the_fingerprint_in_a_shared_crawl(site: ServerThread,
                                                         tmp_path: Path) -> None:
    """The fingerprint tells a page written twice (by a worker whose lease
    was lost, and by the next) from two pages; a crawl of one process does
    not write it (its outputs keep their columns)."""
    shared, alone = tmp_path / "shared.jsonl", tmp_path / "alone.jsonl"
    s = Settings(seeds=(site.base_url + "/",), max_pages=5, quiet=True)
    CrawlRun(s, outputs=[shared], frontier=MemoryFrontier(), signals=False).run()
    CrawlRun(s, outputs=[alone], signals=False).run()
    recs = records(shared)
    assert len(recs) == 5
    assert all(r["fp"] == f"{fingerprint(r['url']):016x}" for r in recs)
    assert not any("fp" in r for r in records(alone))


def test_max_pages_and_depth_hold_for_the_whole_crawl(site: ServerThread, redis_url: str,
                                                      tmp_path: Path) -> None:
    base = site.base_url
    seed(redis_url, "budget", base + "/", "--max-pages", "25", "--per-host", "4")
    seed(redis_url, "deep", base + "/", "--depth", "1", "--per-host", "4")
    outs = [tmp_path / f"b{i}.jsonl" for i in range(2)]
    assert finish([worker(redis_url, "budget", out) for out in outs]) == [0, 0]
    assert len(records(*outs)) == 25
    outs = [tmp_path / f"d{i}.jsonl" for i in range(2)]  # one of them with 2 processes
    assert finish([worker(redis_url, "deep", outs[0]),
                   worker(redis_url, "deep", outs[1], "--workers", "2")]) == [0, 0]
    recs = records(*outs)
    assert len(recs) == len({r["fp"] for r in recs})  # each page once
    assert max(r["depth"] for r in recs) == 1
    assert {r["final_url"] for r in recs if r.get("status") == 200} == set(
        site.site.expected(base, depth=1))


def test_status_of_a_crawl_and_a_worker_stopped_by_sigterm(site: ServerThread, redis_url: str,
                                                           tmp_path: Path) -> None:
    seed(redis_url, "s", site.base_url + "/", "--per-host", "2")
    proc = worker(redis_url, "s", tmp_path / "w.jsonl", "--forever")

    def status() -> dict[str, Any]:
        r = cli("status", "--redis", redis_url, "--crawl", "s", "--json")
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    wait_for(lambda: site.server.requests >= 10)
    st = status()
    assert len(st["workers"]) == 1
    expected = len(site.site.expected(site.base_url))
    wait_for(lambda: status()["done"] >= expected, timeout=60)
    time.sleep(0.5)
    assert proc.poll() is None  # --forever: still waiting for work
    st = status()
    assert (st["queued"], st["leased"]) == (0, 0)
    assert st["pages_per_s"] > 0
    assert st["top_hosts"][0]["host"] in site.base_url
    assert st["workers"][0]["alive"] and st["finished"]
    r = cli("status", "--redis", redis_url, "--crawl", "s")
    assert r.returncode == 0 and "queued" in r.stdout and "workers" in r.stdout
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert status()["workers"] == []  # it said goodbye


def test_spider_crawl_on_two_workers(site: ServerThread, redis_url: str,
                                     tmp_path: Path) -> None:
    spider = tmp_path / "spider.py"
    spider.write_text(f"""
from loopcrawl import Spider

class Pages(Spider):
    start_urls = [{site.base_url + "/"!r}]
    allowed_domains = ["127.0.0.1"]

    def parse(self, response):
        yield from response.follow_all(css="a", callback=self.page)

    def page(self, response):
        yield {{"url": response.url, "title": response.css("title::text").get()}}
        yield from response.follow_all(css="a", callback=self.page)
""")
    seed(redis_url, "sp", site.base_url + "/", "--depth", "2", "--per-host", "4")
    outs = [tmp_path / f"items{i}.jsonl" for i in range(2)]
    assert finish([worker(redis_url, "sp", out, "--spider", str(spider))
                   for out in outs]) == [0, 0]
    items = records(*outs)
    urls = [i["url"] for i in items]
    assert len(urls) == len(set(urls))
    expected = {u for u, d in site.site.expected(site.base_url, depth=2).items() if d >= 1}
    assert set(urls) == expected


@pytest.mark.parametrize("cmd", ["worker", "status"])
def test_bad_input_is_one_line_and_exit_2(cmd: str, redis_url: str) -> None:
    def check(*args: str, says: str) -> None:
        r = cli(cmd, *args, timeout=30)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("loopcrawl: error: "), r.stderr
        assert says in r.stderr

    dead = f"redis://127.0.0.1:{free_port()}/0"
    check("--redis", dead, "--crawl", "x", says=dead.removesuffix("/0"))
    check("--redis", "http://127.0.0.1:6379", "--crawl", "x", says="redis://")
    check("--redis", redis_url, "--crawl", "nope", says="no crawl 'nope'")
    check("--redis", redis_url, "--crawl", "a b", says="crawl name")


def test_seed_errors_and_adding_to_a_crawl(redis_url: str) -> None:
    r = cli("seed", "--redis", f"redis://127.0.0.1:{free_port()}/0", "--crawl", "x",
            "http://example.com/")
    assert r.returncode == 2 and r.stderr.startswith("loopcrawl: error: "), r.stderr
    r = cli("seed", "--redis", redis_url, "--crawl", "x", "not a url")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    seed(redis_url, "x", "http://example.com/", "--depth", "3")
    r = cli("seed", "--redis", redis_url, "--crawl", "x", "http://example.com/a",
            "http://example.com/")
    assert r.returncode == 0 and "1 new URL " in r.stderr, r.stderr
    r = cli("seed", "--redis", redis_url, "--crawl", "x", "http://example.com/b",
            "--depth", "3")  # the same value: fine
    assert r.returncode == 0, r.stderr
    r = cli("seed", "--redis", redis_url, "--crawl", "x", "http://example.com/c",
            "--depth", "2")
    assert r.returncode == 2 and "--depth 3 (not 2)" in r.stderr, r.stderr
    r = cli("worker", "--redis", redis_url, "--crawl", "x", "-s", "depth=2")
    assert r.returncode == 2 and "stored when it was seeded" in r.stderr, r.stderr
    seed(redis_url, "big", "http://example.com/", "--expected-urls", "100000000")
    client = redis.Redis.from_url(redis_url)
    try:  # 2^19 buckets of ~190 URLs at 10^8 (intsets); 2^12 at the default 10^6
        assert [client.hget(f"lc:{{{n}}}:meta", "seen_bits") for n in ("big", "x")] == [
            b"19", b"12"]
    finally:
        client.close()


def test_a_shared_crawls_outputs_reach_the_os_before_the_acks(tmp_path: Path) -> None:
    """Before a page's ack leaves for Redis its record is in the file (a
    SIGKILL after the ack loses nothing): flushed by the caller before each
    batch of acks, or at each write (``flush_each``) for a frontier without
    that hook. SQLite commits there without an fsync (synchronous=NORMAL:
    the WAL survives the process), where a crawl of one process keeps FULL."""
    import sqlite3
    from contextlib import closing

    from loopcrawl.outputs import OutputSpec, open_outputs
    from loopcrawl.outputs.shared import SharedCrawlOutput

    def rows(db: Path) -> int:
        with closing(sqlite3.connect(db)) as con:
            return int(con.execute("SELECT count(*) FROM pages").fetchone()[0])

    rec = {"url": "http://a.example/x", "status": 200}
    for each in (True, False):
        jl, db = tmp_path / f"{each}.jsonl", tmp_path / f"{each}.db"
        opened = open_outputs([OutputSpec(str(jl), "jsonl", "append"),
                               OutputSpec(str(db), "sqlite", "append")])
        try:
            shared = [SharedCrawlOutput(o, flush_each=each) for o in opened]
            assert opened[1]._con.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
            for o in shared:
                o.write_record(dict(rec))
            on_disk = (len(jl.read_bytes().splitlines()), rows(db))
            assert on_disk == ((1, 1) if each else (0, 0))
            for o in shared:
                o.flush()
            line = orjson.loads(jl.read_bytes())
            assert line["fp"] == f"{fingerprint(rec['url']):016x}"
            assert rows(db) == 1
        finally:
            opened.close()
    alone = open_outputs([OutputSpec(str(tmp_path / "alone.db"), "sqlite", "append")])
    try:
        assert alone[0]._con.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        alone.close()


def test_a_killed_worker_writing_sqlite_leaves_no_hole(site: ServerThread, redis_url: str,
                                                       tmp_path: Path) -> None:
    """A worker writing SQLite, SIGKILLed mid-crawl, has committed every page
    it acked (they are not fetched again): its rows and the other worker's
    records together are the whole site."""
    import sqlite3
    from contextlib import closing

    base = site.base_url
    seed(redis_url, "sq", base + "/", "--per-host", "2")
    db, other = tmp_path / "pages.sqlite", tmp_path / "other.jsonl"
    procs = [worker(redis_url, "sq", db, "--concurrency", "4"),
             worker(redis_url, "sq", other, "--concurrency", "4")]
    wait_for(lambda: site.server.requests >= 40)  # both at work, the crawl a third done
    procs[0].kill()
    assert finish(procs) == [-signal.SIGKILL, 0]
    with closing(sqlite3.connect(db)) as con:
        mine = [u for u, in con.execute("SELECT final_url FROM pages WHERE status = 200")]
    assert mine  # it had acked pages before it was killed
    ok = set(mine) | {r["final_url"] for r in records(other) if r.get("status") == 200}
    assert ok == set(site.site.expected(base))


def test_a_worker_refuses_parquet(redis_url: str, tmp_path: Path) -> None:
    """A Parquet file is readable only once closed: a killed worker would lose
    every row of pages already acked, so the worker refuses it before starting."""
    seed(redis_url, "pq", "http://example.com/")
    for flag in ("-o", "-O"):
        out = tmp_path / "x.parquet"
        r = cli("worker", "--redis", redis_url, "--crawl", "pq", "-o", str(tmp_path / "a.jsonl"),
                flag, str(out), timeout=30)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("loopcrawl: error: "), r.stderr
        assert "x.parquet" in r.stderr and "Parquet" in r.stderr and "SQLite" in r.stderr
        assert not out.exists()
    r = cli("status", "--redis", redis_url, "--crawl", "pq", "--json")
    assert json.loads(r.stdout)["queued"] == 1  # nothing was leased


def test_three_workers_one_killed_every_page_once(site: ServerThread, redis_url: str,
                                                  tmp_path: Path) -> None:
    """The issue's test: three workers, one SIGKILLed mid-crawl. The union of
    the outputs is the site; each page was fetched once, but those the killed
    worker had in flight (at most twice); never more than --per-host in flight
    at the server, across all workers."""
    base = site.base_url
    seed(redis_url, "t", base + "/", "--per-host", "2")
    outs = [tmp_path / f"w{i}.jsonl" for i in range(3)]
    # The first worker crawls alone until it is at work (records reach its file
    # as they are acked) and holds leases with more queued: every lease then is
    # its own. The other two start, and it is SIGKILLed before they have
    # leased anything (a worker takes ~0.5 s to start): its leases must expire
    # and come back to them. (Killed among three at work, it may hold none at
    # that instant, and the test would prove nothing.)
    first = worker(redis_url, "t", outs[0], "--concurrency", "4")
    r, keys = redis.Redis.from_url(redis_url), CrawlKeys("t")
    wait_for(lambda: outs[0].exists() and outs[0].stat().st_size > 3000
             and r.hlen(keys.leases) >= 1 and r.llen(keys.q) >= 1, timeout=30)
    procs = [first, *(worker(redis_url, "t", out, "--concurrency", "4") for out in outs[1:])]
    first.kill()
    finish(procs)
    r = cli("status", "--redis", redis_url, "--crawl", "t", "--json")
    assert json.loads(r.stdout)["expired"] >= 1  # it held leases, and they came back
    recs = records(*outs)
    ok = [r["final_url"] for r in recs if r.get("status") == 200]
    expected = set(site.site.expected(base))
    assert set(ok) == expected
    by_fp = {r["fp"] for r in recs}
    assert len(by_fp) == len({r["url"] for r in recs})  # one fingerprint per request
    counts = fetched(site)
    assert counts["/robots.txt"] == 1
    twice = [p for p, n in counts.items() if n > 1]
    assert max(counts.values()) <= 2, twice
    assert len(twice) <= 4  # no more than the killed worker had in flight
    assert max(site.server.peak_concurrency_by_host.values()) <= 2


def test_a_late_worker_joins_and_each_page_is_fetched_once(site: ServerThread, redis_url: str,
                                                            tmp_path: Path) -> None:
    site.server.latency = 0.05  # long enough a crawl for a worker to join it
    base = site.base_url
    seed(redis_url, "late", base + "/", "--per-host", "2")
    first, late = tmp_path / "first.jsonl", tmp_path / "late.jsonl"
    procs = [worker(redis_url, "late", first)]
    wait_for(lambda: site.server.requests >= 20)
    procs.append(worker(redis_url, "late", late))
    assert finish(procs) == [0, 0]
    recs = records(first, late)
    assert sorted(r["url"] for r in recs) == sorted({r["url"] for r in recs})
    assert {r["final_url"] for r in recs if r.get("status") == 200} == set(
        site.site.expected(base))
    assert max(fetched(site).values()) == 1


def test_redis_restarted_mid_crawl_the_crawl_completes(site: ServerThread,
                                                       tmp_path: Path) -> None:
    with RedisServer(persist=True) as server:
        seed(server.url, "r", site.base_url + "/", "--per-host", "2")
        outs = [tmp_path / f"w{i}.jsonl" for i in range(2)]
        procs = [worker(server.url, "r", out) for out in outs]
        wait_for(lambda: site.server.requests >= 30)
        server.restart(down_for=1.0)
        assert finish(procs) == [0, 0]
    recs = records(*outs)
    assert {r["final_url"] for r in recs if r.get("status") == 200} == set(
        site.site.expected(site.base_url))


def test_a_crawl_lost_by_a_redis_without_persistence_stops_its_workers(
        site: ServerThread, tmp_path: Path) -> None:
    """Restarted without persistence, Redis comes back empty: the worker says
    so and stops (exit 1) rather than crawl on with no settings and no seen set."""
    site.server.latency = 0.05
    with RedisServer() as server:
        seed(server.url, "gone", site.base_url + "/", "--per-host", "1")
        proc = worker(server.url, "gone", tmp_path / "w.jsonl")
        wait_for(lambda: site.server.requests >= 5)
        server.restart()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err.decode()[-2000:]
    assert err.decode().strip().endswith("this worker stopped")
    assert "is no longer in Redis" in err.decode()


def test_sigterm_gives_a_workers_leases_back_at_once(site: ServerThread, redis_url: str,
                                                     tmp_path: Path) -> None:
    """A worker stopped by SIGTERM mid-crawl returns what it held to the queue
    at once (not when its 60 s leases would expire), and the next worker
    finishes the crawl: together they wrote every page once."""
    site.server.latency = 0.05
    seed(redis_url, "term", site.base_url + "/", "--per-host", "2")
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    proc = worker(redis_url, "term", first, "--lease-ttl", "60")
    wait_for(lambda: site.server.requests >= 15)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err.decode()[-2000:]
    r = cli("status", "--redis", redis_url, "--crawl", "term", "--json")
    st = json.loads(r.stdout)
    assert st["leased"] == 0 and st["queued"] > 0, st
    assert finish([worker(redis_url, "term", second)]) == [0]
    recs = records(first, second)
    assert len(recs) == len({r["fp"] for r in recs})
    assert {r["final_url"] for r in recs if r.get("status") == 200} == set(
        site.site.expected(site.base_url))


def test_exit_3_is_for_a_crawl_that_crawled_nothing_not_a_workers_share(
        site: ServerThread, redis_url: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    seed(redis_url, "ok", site.base_url + "/", "--depth", "0", "--retries", "0")
    assert finish([worker(redis_url, "ok", tmp_path / "a.jsonl")]) == [0]
    seed(redis_url, "ok", dead)  # then a worker whose one page fails: the crawl did crawl
    assert finish([worker(redis_url, "ok", tmp_path / "b.jsonl")]) == [0]
    assert [r["error"] for r in records(tmp_path / "b.jsonl")] == ["connection_refused"]
    seed(redis_url, "dead", dead, "--retries", "0")
    p = worker(redis_url, "dead", tmp_path / "c.jsonl")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 3 and b"nothing was crawled" in err, err.decode()[-2000:]
