"""The stats JSON (schema 1): its keys, its figures against a real crawl, its bounds;
``--stats``, ``--report`` and ``loopcrawl report`` as a user runs them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from loopcrawl import FetchRecord, Settings
from loopcrawl.core import stats as stats_mod
from loopcrawl.core.stats import EDGES, TIMELINE_POINTS, CrawlStats, percentile
from loopcrawl.report import load_stats
from loopcrawl.testsite import ServerThread, Site

from .conftest import PageServer
from .helpers import run

LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]

# The schema's top-level keys: removing or renaming one breaks every reader.
SCHEMA_1_KEYS = {
    "schema", "started_at", "finished_at", "duration_s", "interrupted", "records", "pages",
    "ok", "failed", "pages_per_s", "bytes", "status", "content_type", "error",
    "error_examples", "depth", "hosts", "response_ms", "slowest", "timeline", "links",
    "scope_stops", "traps", "retries", "robots_fetches", "items", "output", "rebuilt_from",
    "workers",
}


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOPCRAWL, *args], capture_output=True, text=True, timeout=timeout)


def test_schema_keys_and_figures_against_a_real_crawl(testsite: ServerThread) -> None:
    records, st = run(testsite.base_url + "/")
    s = json.loads(json.dumps(st.to_json()))  # what a reader of the file gets
    assert set(s) == SCHEMA_1_KEYS
    assert s["schema"] == 1
    assert s["records"] == len(records) and s["ok"] + s["failed"] == len(records)
    with_status = [r for r in records if r.status is not None]
    assert s["pages"] == len(with_status)
    assert s["status"] == {str(k): v for k, v in
                           sorted(Counter(r.status for r in with_status).items())}
    assert s["status"]["404"] > 0 and s["status"]["200"] > 200
    assert s["content_type"] == {"text/html": len(with_status)}  # parameters dropped
    assert s["error"] == dict(Counter(r.error for r in records if r.error))
    assert s["error"]["robots_denied"] > 0
    for kind, examples in s["error_examples"].items():
        assert 1 <= len(examples) <= 5 and len(examples) == min(5, s["error"][kind])
        assert all(e["url"] in {r.url for r in records if r.error == kind} for e in examples)
    assert s["depth"] == {str(k): v for k, v in
                          sorted(Counter(r.depth for r in records).items())}
    assert s["depth"]["0"] == 1
    host = testsite.base_url.split("/")[2]
    assert s["hosts"]["count"] == 1
    assert s["hosts"]["top"][0] == {
        "host": host, "records": len(records), "pages": len(with_status),
        "errors": s["failed"], "bytes": sum(r.bytes for r in records),
        "mean_ms": s["hosts"]["top"][0]["mean_ms"]}
    assert s["bytes"]["total"] == sum(r.bytes for r in records) > 0
    rt = s["response_ms"]
    times = sorted(r.elapsed_ms for r in with_status)
    assert rt["count"] == len(times) == sum(n for _, n in rt["histogram"])
    assert 0 < rt["p50"] <= rt["p90"] <= rt["p95"] <= rt["p99"] <= rt["max"]
    assert rt["max"] == round(times[-1], 1)
    true_p90 = times[math.ceil(0.9 * len(times)) - 1]  # the nearest-rank percentile
    # p90 is an upper bound of the true one, then rounded to 0.1 ms (so up to 0.05 under).
    assert true_p90 <= rt["p90"] * 1.0001 + 0.05 and rt["p90"] <= true_p90 * 1.05
    assert [p["ms"] for p in s["slowest"]] == [round(t, 1) for t in times[::-1][:10]]
    assert sum(s["timeline"]["records"]) == len(records)
    assert sum(s["timeline"]["errors"]) == s["failed"]
    assert s["links"]["found"] == sum(r.links for r in records)
    assert s["links"]["not_followed"] == dict(sorted(st.skipped.items()))
    assert s["scope_stops"] == st.skipped["scope"] > 0  # the site links to 127.0.0.2
    assert s["robots_fetches"] == 1 and s["retries"] == 0 and s["items"] == {}
    assert s["duration_s"] > 0 and s["pages_per_s"] > 0 and s["interrupted"] is False
    assert s["started_at"].endswith("Z") and s["started_at"] < s["finished_at"]
    assert s["rebuilt_from"] is None and s["workers"] is None  # one process


def test_percentile_is_the_bucket_upper_edge_within_its_width() -> None:
    st = CrawlStats()
    for ms in range(1, 101):  # 1..100 ms, one each
        st.times[stats_mod.bisect_left(EDGES, float(ms))] += 1
    p50 = percentile(st.times, 0.5)
    assert 50 <= p50 < 50 * 2 ** (1 / 16)
    p99 = percentile(st.times, 0.99)
    assert 99 <= p99 < 99 * 2 ** (1 / 16)
    assert percentile(st.times, 1.0) >= 100
    assert percentile([0] * len(st.times), 0.5) == 0.0


def _rec(url: str, at: float, **kw: object) -> FetchRecord:
    return FetchRecord(url=url, depth=0, referrer=None, fetched_at=at, status=200,
                       content_type="text/html", elapsed_ms=5.0, **kw)  # type: ignore[arg-type]


def test_timeline_and_hosts_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    st = CrawlStats(started_at=1000.0)
    for i in range(0, 36_000, 7):  # ten hours, a record every 7 s
        st.record(_rec("http://a.example/x", 1000.0 + i))
    assert len(st.timeline) <= TIMELINE_POINTS and sum(st.timeline) == st.records
    assert st.tick >= 36_000 / TIMELINE_POINTS
    monkeypatch.setattr(stats_mod, "MAX_HOSTS", 3)
    st = CrawlStats(started_at=0.0)
    for i in range(10):
        st.record(_rec(f"http://h{i}.example/", 0.0))
    assert set(st.hosts) == {"h0.example", "h1.example", "h2.example", "(other)"}
    assert st.hosts["(other)"][0] == 7


def test_crawl_writes_stats_and_report_files(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/a", "/gone"])
    pages.add("/a", links=["/"])
    out, stats, report = tmp_path / "p.jsonl", tmp_path / "s.json", tmp_path / "r.html"
    p = cli("crawl", pages.url + "/", "-o", str(out), "--stats", str(stats), "--report",
            str(report), "-q")
    assert p.returncode == 0, p.stderr
    s = json.loads(stats.read_text())
    assert s["schema"] == 1 and s["records"] == 3
    assert s["status"] == {"200": 2, "404": 1} and s["error"] == {"http_status": 1}
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "http_status" in html
    assert "<script src" not in html and "<link" not in html and "http-equiv" not in html
    # The same figures after the fact, from the records.
    again = tmp_path / "again.json"
    p = cli("report", str(out), "-o", str(tmp_path / "r2.html"), "--stats", str(again))
    assert p.returncode == 0, p.stderr
    a = json.loads(again.read_text())
    for key in ("records", "pages", "ok", "failed", "status", "content_type", "error",
                "depth", "bytes"):
        assert a[key] == s[key], key
    # And from the stats file itself: the same numbers.
    assert load_stats(str(stats)) == s


def test_report_from_a_state_file(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/a", "/b"])
    pages.add("/a")
    pages.add("/b", status=500)
    state, out = tmp_path / "crawl.state", tmp_path / "p.jsonl"
    p = cli("crawl", pages.url + "/", "-o", str(out), "--state", str(state), "--retries", "0",
            "-q")
    assert p.returncode == 0, p.stderr
    s = load_stats(str(state))
    assert s["records"] == 3 and s["status"] == {"200": 2, "500": 1}
    assert s["output"] == str(out) and s["rebuilt_from"] == "records"
    # Without an output of page records, the state's own table: kinds and depths.
    state2 = tmp_path / "bare.state"
    p = cli("crawl", pages.url + "/", "--state", str(state2), "--retries", "0", "-q")
    assert p.returncode == 0, p.stderr
    s2 = load_stats(str(state2))
    assert s2["records"] == 3 and s2["depth"] == {"0": 1, "1": 2}
    assert s2["error"] == {"http_status": 1} and s2["rebuilt_from"] == "state"


def test_report_from_every_page_record_format(pages: PageServer, tmp_path: Path) -> None:
    """``crawl -o`` in each format, then ``report`` on each: the same figures."""
    pages.add("/", links=["/a", "/b", "/gone"])
    pages.add("/a", links=["/"])
    pages.add("/b", status=503)
    names = ["p.jsonl", "p.jsonl.gz", "p.json", "p.csv", "p.db", "p.parquet"]
    args = [a for n in names for a in ("-o", str(tmp_path / n))]
    p = cli("crawl", pages.url + "/", *args, "--retries", "0", "--stats",
            str(tmp_path / "s.json"), "-q")
    assert p.returncode == 0, p.stderr
    live = json.loads((tmp_path / "s.json").read_text())
    assert live["records"] == 4 and live["status"] == {"200": 2, "404": 1, "503": 1}
    for n in names:
        s = load_stats(str(tmp_path / n))
        for key in ("records", "pages", "ok", "failed", "status", "content_type", "error",
                    "depth", "bytes"):
            assert s[key] == live[key], (n, key)
        assert s["rebuilt_from"] == "records" and s["response_ms"]["count"] == 4, n
        assert abs(s["response_ms"]["max"] - live["response_ms"]["max"]) <= 0.1, n


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    (b'{"title": "an item", "price": 3}\n{"title": "another"}\n', "not a file of page records"),
    (b"", "holds no page records"),
    (b"not json\n", "not a JSON line"),
    (b"SQLite format 3\x00" + b"\x00" * 100, "not a database"),
])
def test_report_bad_source_is_one_line_and_exit_2(tmp_path: Path, content: bytes | None,
                                                   message: str) -> None:
    src = tmp_path / "in.jsonl"
    if content is not None:
        src.write_bytes(content)
    p = cli("report", str(src), "-o", str(tmp_path / "r.html"))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("loopcrawl: error: ")
    assert message in p.stderr
    assert not (tmp_path / "r.html").exists()


def test_stats_and_report_paths_checked_before_the_crawl(pages: PageServer,
                                                         tmp_path: Path) -> None:
    pages.add("/")
    p = cli("crawl", pages.url + "/", "--stats", str(tmp_path / "no" / "s.json"), "-q")
    assert p.returncode == 2 and "does not exist" in p.stderr
    assert pages.log == []


def test_plain_progress_lines_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    with ServerThread(Site(pages=120, seed=3), latency_ms=40) as srv:
        p = cli("crawl", srv.base_url + "/", "--concurrency", "2", "--per-host", "2",
                "--progress-interval", "0.4", "--max-pages", "60")
        assert p.returncode == 0, p.stderr
        q = cli("crawl", srv.base_url + "/", "--concurrency", "2", "--per-host", "2",
                "--progress-interval", "0.4", "--max-pages", "30", "-q")
    progress = [ln for ln in p.stderr.splitlines() if ln.startswith("loopcrawl: [")]
    assert len(progress) >= 2, p.stderr
    assert "\x1b[" not in p.stderr  # no terminal codes in a log
    host = srv.base_url.split("/")[2]
    for ln in progress:
        assert " pages (" in ln and "/s, " in ln and " queued, " in ln and "ETA " in ln
    assert any(f"busiest: {host} fetching" in ln for ln in progress)
    assert any("ETA " in ln and "ETA unknown" not in ln for ln in progress)  # --max-pages
    assert q.returncode == 0 and q.stderr == ""


def test_busiest_hosts_tell_what_each_does(pages: PageServer) -> None:
    """Seen from inside a crawl: a host with a delay waits on it; one answering 429
    backs off; one with requests on the wire is fetching."""
    import asyncio

    from loopcrawl import Crawler

    pages.add("/", links=[f"/p{i}" for i in range(6)])
    for i in range(6):
        pages.add(f"/p{i}", delay=0.05, status=429 if i == 0 else 200)
    seen: set[str] = set()

    async def go() -> None:
        c = Crawler(Settings(seeds=(pages.url + "/",), delay=0.15, retries=0,
                             obey_robots=False, quiet=True))
        task = asyncio.create_task(c.run())
        while not task.done():
            if c.scheduler is not None:
                seen.update(h.state for h in c.scheduler.busiest(3))
            await asyncio.sleep(0.01)
        await task

    asyncio.run(asyncio.wait_for(go(), 20))
    assert {"fetching", "waiting on delay", "backing off"} <= seen, seen


def test_eta_only_when_the_crawl_can_tell() -> None:
    from loopcrawl import Crawler
    from loopcrawl.cli.progress import Progress

    def eta(max_pages: int | None, done: int, rate: float, pending: int,
            trend: float) -> float | None:
        c = Crawler(Settings(seeds=("http://a.example/",), max_pages=max_pages, quiet=True))
        c.stats.records = done
        return Progress(c, live=False)._eta(rate, pending, trend)

    assert eta(1000, 400, 100.0, 5000, +50.0) == 6.0  # the budget left at the rate now
    assert eta(1000, 400, 100.0, 200, -50.0) == 4.0  # the queue runs out first
    assert eta(None, 400, 100.0, 300, -30.0) == 10.0  # a shrinking queue, at its pace
    assert eta(None, 400, 100.0, 300, +30.0) is None  # a growing queue: no ETA
    assert eta(None, 400, 100.0, 300, 0.0) is None
    assert eta(1000, 400, 0.0, 300, 0.0) is None  # nothing done lately: no rate
