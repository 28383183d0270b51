"""Crash-safe crawls (``--state``), end to end: real subprocesses, real files,
real signals, the built-in test site in its own process as ground truth.

The guarantee under test: however often a crawl is killed and resumed, its
output ends with every page exactly once, every line whole and valid JSON.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from loopcrawl.frontier.sqlite import read_status
from loopcrawl.testsite import ServerProcess, Site

PAGES = 1500
LATENCY_MS = 20.0  # per response: slow enough that kills land mid-crawl
# Slow crawls (~150 and ~300 pages/s: ~10 s and ~5 s in all) to interrupt.
SLOW = ("--concurrency", "3", "--per-host", "3")
MEDIUM = ("--concurrency", "6", "--per-host", "6")
FAST = ("--concurrency", "32", "--per-host", "32")
LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]

pytestmark = pytest.mark.timeout(90)


@dataclass(frozen=True)
class Crawled:
    records: list[dict]
    pages: frozenset[str]  # final_url of the status-200 records
    urls: frozenset[str]  # every url and final_url: the same whatever the order


def load(path: Path) -> Crawled:
    """Parse the output strictly: a torn or invalid line fails the test."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the last line is torn"
    records = [orjson.loads(line) for line in data.splitlines()]
    ok = [r["final_url"] for r in records if r["status"] == 200]
    assert len(ok) == len(set(ok)), "a page is in the output twice"
    urls = [r["url"] for r in records]
    assert len(urls) == len(set(urls)), "a request is in the output twice"
    every = set(urls) | {r["final_url"] for r in records if r["final_url"]}
    return Crawled(records, frozenset(ok), frozenset(every))


@pytest.fixture(scope="module")
def site() -> Iterator[ServerProcess]:
    with ServerProcess(pages=PAGES, latency_ms=LATENCY_MS) as srv:
        yield srv


@pytest.fixture(scope="module")
def expected(site: ServerProcess) -> frozenset[str]:
    return frozenset(Site(PAGES).expected(site.base_url))


def crawl_cmd(site: ServerProcess, out: Path, state: Path, *extra: str) -> list[str]:
    return [*LOOPCRAWL, "crawl", site.base_url + "/", "-o", str(out), "--state", str(state),
            "-q", *extra]


def run(cmd: list[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def reference(site: ServerProcess, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Crawled, Path, Path]:
    """One uninterrupted crawl with --state: what every interrupted one must equal."""
    d = tmp_path_factory.mktemp("reference")
    out, state = d / "pages.jsonl", d / "crawl.db"
    r = run(crawl_cmd(site, out, state, *FAST))
    assert r.returncode == 0, r.stderr
    return load(out), out, state


def test_uninterrupted_crawl_is_complete(reference: tuple[Crawled, Path, Path],
                                         expected: frozenset[str], site: ServerProcess) -> None:
    crawled, out, state = reference
    assert crawled.pages == expected
    # The same command on a finished crawl does nothing, and the output stays.
    before = out.read_bytes()
    r = run(crawl_cmd(site, out, state, *FAST))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == before


def interrupt_and_resume(site: ServerProcess, tmp_path: Path, sig: signal.Signals, times: int,
                         seed: int, flags: tuple[str, ...]) -> tuple[Crawled, int]:
    """Interrupt the crawl ``times`` times, resuming each time, then let it finish.

    SIGKILL lands at a random moment from start-up on; SIGTERM and SIGINT
    after the crawl's first checkpoint (its signal handlers are installed by
    then) plus a random delay. Returns the output and how many interruptions
    hit a running crawl.
    """
    rng = random.Random(seed)
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    cmd = crawl_cmd(site, out, state, *flags)
    landed = 0
    for _ in range(times):
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if sig == signal.SIGKILL:
                time.sleep(rng.uniform(0.2, 2.5))
            else:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and proc.poll() is None:
                    ck = _status_or_none(state)
                    if ck is not None and ck.checkpoint_at and ck.checkpoint_at > started:
                        break
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is None:
                proc.send_signal(sig)
                landed += 1
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        want = {signal.SIGKILL: -9, signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
        assert proc.returncode in (want, 0), err.decode()
    r = run(cmd)
    assert r.returncode == 0, r.stderr
    return load(out), landed


def _status_or_none(state: Path):  # type: ignore[no-untyped-def]
    try:
        return read_status(str(state))
    except Exception:  # not created yet, or mid-creation
        return None


def test_sigkill_ten_times(site: ServerProcess, tmp_path: Path, expected: frozenset[str],
                           reference: tuple[Crawled, Path, Path]) -> None:
    crawled, landed = interrupt_and_resume(site, tmp_path, signal.SIGKILL, 10, seed=1,
                                           flags=SLOW)
    assert landed >= 8, "the kills should land while the crawl runs"
    assert crawled.pages == expected
    assert crawled.urls == reference[0].urls


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_and_resume(site: ServerProcess, tmp_path: Path, expected: frozenset[str],
                                  reference: tuple[Crawled, Path, Path],
                                  sig: signal.Signals) -> None:
    crawled, landed = interrupt_and_resume(site, tmp_path, sig, 3, seed=int(sig),
                                           flags=MEDIUM)
    assert landed == 3
    assert crawled.pages == expected
    assert crawled.urls == reference[0].urls


def test_status_counts_match_the_output(site: ServerProcess, tmp_path: Path,
                                        reference: tuple[Crawled, Path, Path]) -> None:
    # A finished crawl: nothing queued, one output line per request done.
    crawled, out, state = reference
    st = json.loads(run([*LOOPCRAWL, "status", "--state", str(state), "--json"]).stdout)
    assert (st["queued"], st["in_flight"], st["running_pid"]) == (0, 0, None)
    assert st["done"] + st["failed"] == len(crawled.records)
    assert st["failed"] == sum(1 for r in crawled.records
                               if r.get("error") not in (None, "robots_denied"))
    assert st["outputs"] == {str(out): out.stat().st_size}
    assert st["top_hosts"][0]["host"] == site.base_url.removeprefix("http://")
    # A killed crawl: the output up to the checkpointed offset holds exactly
    # the requests done, and the text form shows the counts.
    out2, state2 = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    proc = subprocess.Popen(crawl_cmd(site, out2, state2, *SLOW), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Killed once it has written pages and taken a checkpoint (every second),
    # however long the interpreter took to start on a loaded machine.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            out2.exists() and out2.read_bytes().count(b"\n") >= 10):
        time.sleep(0.05)
    time.sleep(1.5)
    proc.kill()
    proc.wait()
    r = run([*LOOPCRAWL, "status", "--state", str(state2), "--json"])
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    head = out2.read_bytes()[: st["outputs"][str(out2)]]
    assert st["done"] + st["failed"] == head.count(b"\n") > 0
    assert st["queued"] > 0 and st["in_flight"] == 0
    text = run([*LOOPCRAWL, "status", "--state", str(state2)]).stdout
    for label in ("queued", "in flight", "done", "failed", "top hosts", "not running"):
        assert label in text
    assert f"{st['queued']:,}" in text


def test_second_crawl_on_a_running_state_refuses(site: ServerProcess, tmp_path: Path) -> None:
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    first = subprocess.Popen(crawl_cmd(site, out, state, *SLOW), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while (st := _status_or_none(state)) is None or st.running_pid is None:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        assert st.running_pid == first.pid
        r = run(crawl_cmd(site, out, state), timeout=20)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1
        assert "in use by another crawl" in r.stderr and str(first.pid) in r.stderr
        assert "running (pid" in run([*LOOPCRAWL, "status", "--state", str(state)]).stdout
        assert first.poll() is None  # the first crawl goes on undisturbed
    finally:
        first.kill()
        first.wait()
    # The OS dropped the dead crawl's lock: the state is free again.
    assert _status_or_none(state).running_pid is None  # type: ignore[union-attr]


def test_foreign_and_corrupt_state_files_are_refused_untouched(
        site: ServerProcess, tmp_path: Path, reference: tuple[Crawled, Path, Path]) -> None:
    out = tmp_path / "pages.jsonl"
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(random.Random(0).randbytes(50_000))
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('precious')")
    con.commit()
    con.close()
    broken = tmp_path / "broken.db"  # a real state with pages in its middle overwritten
    data = bytearray(reference[2].read_bytes())
    data[8192:8192 + 3 * 4096] = random.Random(1).randbytes(3 * 4096)
    broken.write_bytes(bytes(data))
    cases = [(garbage, "not a loopcrawl state file"), (foreign, "another application"),
             (broken, "corrupt")]
    for path, message in cases:
        before = path.read_bytes()
        for cmd in (crawl_cmd(site, out, path), [*LOOPCRAWL, "status", "--state", str(path)]):
            r = run(cmd, timeout=20)
            assert r.returncode == 2, (path, r.stderr)
            assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
            assert "Traceback" not in r.stderr
        assert path.read_bytes() == before
    assert not out.exists() or out.stat().st_size == 0


def test_state_bound_to_its_output(site: ServerProcess, tmp_path: Path,
                                   reference: tuple[Crawled, Path, Path]) -> None:
    _, out, state = reference
    r = run(crawl_cmd(site, tmp_path / "other.jsonl", state))
    assert r.returncode == 2 and f"pass -o {out}" in r.stderr
    r = run([*LOOPCRAWL, "crawl", site.base_url + "/", "-o", "-", "--state",
             str(tmp_path / "x.db")])
    assert r.returncode == 2 and "standard output" in r.stderr
    r = run([*LOOPCRAWL, "crawl", site.base_url + "/", "--recrawl-failed"])
    assert r.returncode == 2 and "--state" in r.stderr


def test_max_pages_is_a_budget_for_the_whole_crawl(site: ServerProcess, tmp_path: Path) -> None:
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    for budget, lines in (("100", 100), ("100", 100), ("150", 150)):
        r = run(crawl_cmd(site, out, state, *FAST, "--max-pages", budget))
        assert r.returncode == 0, r.stderr
        counted = [x for x in load(out).records if x.get("error") != "robots_denied"]
        assert len(counted) == lines  # robots.txt refusals cost no budget
    assert "budget" in run(crawl_cmd(site, out, state, "--max-pages", "150")).stderr


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not death
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize(("limit", "flags", "culprit"), [
    # Slow pages: the first checkpoint writes ~50 KB of output, then its
    # transaction (the ~1,500 URLs found by then) crosses the limit.
    (120_000, SLOW, "cannot write the crawl state"),
    # Under the first batch of records (~85 KB, written before any state commit).
    (60_000, FAST, "pages.jsonl: File too large"),
], ids=["state-file-full", "output-full"])
def test_full_disk_stops_cleanly_and_resumes(site: ServerProcess, tmp_path: Path,
                                             expected: frozenset[str],
                                             reference: tuple[Crawled, Path, Path],
                                             limit: int, flags: tuple[str, ...],
                                             culprit: str) -> None:
    """A file size limit stands in for a full disk: the write that crosses it
    fails (EFBIG), as one would with ENOSPC. Whichever file fills up first,
    the crawl stops with one clear line and resumes correctly afterwards."""
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    r = run(crawl_cmd(site, out, state, *flags), preexec_fn=lambda: _limit_file_size(limit))
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert culprit in r.stderr, r.stderr
    assert "run the same command to resume" in r.stderr
    r = run(crawl_cmd(site, out, state, *FAST))
    assert r.returncode == 0, r.stderr
    crawled = load(out)
    assert crawled.pages == expected
    assert crawled.urls == reference[0].urls


def test_recrawl_failed_fetches_only_the_failed(site: ServerProcess, tmp_path: Path,
                                                expected: frozenset[str]) -> None:
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    assert run(crawl_cmd(site, out, state, *FAST)).returncode == 0
    first = load(out)
    failed = {r["url"] for r in first.records
              if r.get("error") not in (None, "robots_denied")}
    assert failed, "the test site has broken links"
    before = out.read_bytes()
    r = run(crawl_cmd(site, out, state, *FAST, "--recrawl-failed"))
    assert r.returncode == 0, r.stderr
    assert f"{len(failed):,} failed pages queued again" in r.stderr
    after = out.read_bytes()
    assert after.startswith(before)  # the new records are appended
    again = [orjson.loads(x) for x in after[len(before):].splitlines()]
    assert sorted(x["url"] for x in again) == sorted(failed)  # each once, nothing else
    assert first.pages == expected
    st = read_status(str(state))
    assert (st.queued, st.failed) == (0, len(failed))
    assert st.done + st.failed == len(first.records)


SPIDER = """
import os
from loopcrawl import Spider

class Pages(Spider):
    custom_settings = {"scope": "host", "depth": 2}
    start_urls = [os.environ["SITE"] + "/"]

    def parse(self, response):
        if response.content_type == "text/html":
            yield {"url": response.url, "title": response.css("title::text").get()}
            yield response.follow_all(css="a")
"""


def _items(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [u for (u,) in con.execute('SELECT url FROM "item"')]
    finally:
        con.close()


def test_spider_items_in_sqlite_survive_kills(site: ServerProcess, tmp_path: Path) -> None:
    """The SQLite exporter: its rows are cut back to the checkpoint on resume,
    so each page's item is in the table once however often the run is killed."""
    spider = tmp_path / "pages.py"
    spider.write_text(SPIDER)
    env = {**os.environ, "SITE": site.base_url}

    def cmd(d: Path, *extra: str) -> list[str]:
        return [*LOOPCRAWL, "run", str(spider), "-o", str(d / "items.db"), "--state",
                str(d / "crawl.db"), "-q", *extra]

    (tmp_path / "ref").mkdir()
    r = run(cmd(tmp_path / "ref", "-s", "concurrency=32", "-s", "per_host=32"), env=env)
    assert r.returncode == 0, r.stderr
    reference = _items(tmp_path / "ref" / "items.db")
    assert len(reference) == len(set(reference)) > 100
    rng = random.Random(4)
    (tmp_path / "k").mkdir()
    landed = 0
    for _ in range(4):
        proc = subprocess.Popen(cmd(tmp_path / "k", "-s", "concurrency=3", "-s", "per_host=3"),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        landed += proc.poll() is None
        proc.kill()
        proc.wait()
    assert landed >= 3
    r = run(cmd(tmp_path / "k"), env=env)
    assert r.returncode == 0, r.stderr
    items = _items(tmp_path / "k" / "items.db")
    assert len(items) == len(set(items)), "an item is in the table twice"
    assert set(items) == set(reference)
