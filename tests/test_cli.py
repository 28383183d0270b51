"""The command line end to end, as a user runs it: a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PageServer

LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOPCRAWL, *args], capture_output=True, text=True, timeout=timeout)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_crawl_writes_jsonl_and_summary(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/a", "/missing"])
    pages.add("/a", title="A page")
    out = tmp_path / "pages.jsonl"
    r = cli("crawl", pages.url + "/", "-o", str(out))
    assert r.returncode == 0, r.stderr
    recs = {rec["url"]: rec for rec in lines(out)}
    assert set(recs) == {pages.url + "/", pages.url + "/a", pages.url + "/missing"}
    a = recs[pages.url + "/a"]
    expected_keys = {"url", "final_url", "status", "depth", "referrer", "title",
                     "content_type", "bytes", "fetched_at", "elapsed_ms", "links"}
    assert expected_keys <= set(a)
    assert (a["status"], a["depth"], a["title"], a["referrer"]) == (200, 1, "A page", pages.url + "/")
    assert recs[pages.url + "/missing"]["error"] == "http_status"
    assert "crawl finished" in r.stderr and "http_status: 1" in r.stderr
    assert str(out) in r.stderr


def test_crawl_to_stdout_quiet(pages: PageServer) -> None:
    pages.add("/")
    r = cli("crawl", pages.url + "/", "-o", "-", "--quiet")
    assert r.returncode == 0
    assert json.loads(r.stdout)["status"] == 200
    assert r.stderr == ""


@pytest.mark.parametrize(("flag", "pool"), [([], True), (["--http-session"], False)])
def test_http_session_flag_turns_the_pool_off(monkeypatch: pytest.MonkeyPatch,
                                              flag: list[str], pool: bool) -> None:
    from click.testing import CliRunner

    from loopcrawl import cli as cli_module
    from loopcrawl.core.runner import CrawlResult, CrawlRun, Outcome
    from loopcrawl.core.stats import CrawlStats

    got = []

    def no_crawl(self: CrawlRun) -> CrawlResult:
        got.append(self.effective_settings())
        return CrawlResult(CrawlStats(), Outcome.FINISHED, 0)

    monkeypatch.setattr(CrawlRun, "run", no_crawl)
    r = CliRunner().invoke(cli_module.main, ["crawl", "http://127.0.0.1:1/", "--quiet", *flag])
    assert r.exit_code == 0, r.output
    assert got[0].http_pool is pool


def test_crawl_over_aiohttp_session(pages: PageServer) -> None:
    pages.add("/", links=["/b"])
    pages.add("/b", title="B")
    r = cli("crawl", pages.url + "/", "-o", "-", "--quiet", "--http-session")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["status"] for line in r.stdout.splitlines()] == [200, 200]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "not a url"], "not an http(s) URL"),
        (["crawl", "ftp://example.com/"], "not an http(s) URL"),
        (["crawl", "http://127.0.0.1:1/", "-o", "/nonexistent/dir/out.jsonl"], "cannot write"),
        (["crawl", "http://127.0.0.1:1/", "-o", "/"], "cannot write"),
        (["crawl", "http://127.0.0.1:1/", "--concurrency", "0"], "--concurrency must be at least 1, not 0"),
        (["crawl", "http://127.0.0.1:1/", "--deny", "("], "--deny holds"),
        (["crawl", "http://127.0.0.1:1/", "--scope", "planet"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    r = cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_testsite_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("testsite", "--port", str(port), "--pages", "10", timeout=30)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _slow_site(pages: PageServer, n: int = 400, delay: float = 0.05) -> None:
    links = [f"/p{i}" for i in range(n)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p, delay=delay)


def _wait_for_lines(path: Path, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0 and len(path.read_bytes().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_flushes_and_summarizes(
    pages: PageServer, tmp_path: Path, sig: int, code: int
) -> None:
    _slow_site(pages)
    out = tmp_path / "pages.jsonl"
    # Batches of 256 lines: the first appear once the crawl is well under way.
    p = subprocess.Popen([*LOOPCRAWL, "crawl", pages.url + "/", "-o", str(out),
                          "--concurrency", "4", "--per-host", "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while len([h for h in pages.log if h.path.startswith("/p")]) < 20:
            assert time.monotonic() < deadline, "crawl did not start"
            time.sleep(0.05)
        p.send_signal(sig)
        _, err = p.communicate(timeout=15)
    finally:
        p.kill()
    assert p.returncode == code
    assert "crawl interrupted" in err
    recs = lines(out)  # every line is whole, valid JSON
    assert 10 <= len(recs) < 401  # in-flight requests are abandoned, not recorded
    assert len({r["url"] for r in recs}) == len(recs)


def test_second_ctrl_c_exits_at_once(pages: PageServer, tmp_path: Path) -> None:
    _slow_site(pages, delay=5)
    p = subprocess.Popen([*LOOPCRAWL, "crawl", pages.url + "/", "-o", str(tmp_path / "o.jsonl")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while not any(h.path.startswith("/p") for h in pages.log):
            assert time.monotonic() < deadline, "crawl did not start"
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
    finally:
        p.kill()
    assert p.returncode == 130


# -- the runner as a library, exit codes, resumed summaries ---------------------------


def test_crawl_run_as_a_library(pages: PageServer, tmp_path: Path) -> None:
    from loopcrawl import CrawlRun, Settings
    from loopcrawl.core.runner import Outcome

    pages.add("/", links=["/a"])
    pages.add("/a")
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    notes: list[str] = []
    result = CrawlRun(Settings(seeds=(pages.url + "/",)), outputs=[out], state=state,
                      on_notice=lambda level, text: notes.append(text)).run()
    assert (result.outcome, result.exit_code, result.stats.records) == (Outcome.FINISHED, 0, 2)
    assert result.totals is not None and (result.totals.done, result.totals.resumed) == (2, False)
    assert len(lines(out)) == 2
    # The same run again: complete, nothing fetched, the output as it was.
    before = out.read_bytes()
    again = CrawlRun(Settings(seeds=(pages.url + "/",)), outputs=[out], state=state).run()
    assert (again.outcome, again.exit_code, again.stats.records) == (Outcome.COMPLETE, 0, 0)
    assert out.read_bytes() == before
    assert notes == []


def test_crawl_run_precedence_defaults_spider_command_line() -> None:
    from loopcrawl import CrawlRun, Settings, Spider

    class S(Spider):
        custom_settings = {"delay": 2.0, "per_host": 3}

    run = CrawlRun(Settings(delay=1.0, retries=5), spider=S(), overrides={"per_host": 4})
    s = run.effective_settings()
    assert (s.delay, s.per_host, s.retries) == (2.0, 4, 5)


def test_every_seed_failed_exits_3(pages: PageServer) -> None:
    pages.add("/", status=404)
    r = cli("crawl", pages.url + "/", "-o", "-", "-q")
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines() == [
        "loopcrawl: nothing was crawled: every request failed (see the errors in the output)"]
    assert json.loads(r.stdout)["error"] == "http_status"


def test_spider_without_start_urls_exits_3(tmp_path: Path) -> None:
    spider = tmp_path / "empty.py"
    spider.write_text("from loopcrawl import Spider\n\n"
                      "class Empty(Spider):\n    name = 'empty'\n")
    r = cli("run", str(spider), "-q")
    assert r.returncode == 3, r.stderr
    assert "nothing was crawled: no request was made" in r.stderr
    assert "Traceback" not in r.stderr


def test_one_page_crawled_is_exit_0(pages: PageServer) -> None:
    pages.add("/", links=["/gone"])
    pages.add("/gone", status=500)
    r = cli("crawl", pages.url + "/", "-o", "-", "-q", "--retries", "0")
    assert r.returncode == 0, r.stderr


def test_resumed_crawl_shows_the_whole_crawl(pages: PageServer, tmp_path: Path) -> None:
    pages.add("/", links=["/a", "/b", "/c"])
    for p in ("/a", "/b", "/c"):
        pages.add(p)
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    args = ("crawl", pages.url + "/", "-o", str(out), "--state", str(state), "--concurrency", "1")
    assert cli(*args, "--max-pages", "1").returncode == 0
    r = cli(*args, "--max-pages", "3")
    assert r.returncode == 0, r.stderr
    assert "pages  2 (2 ok)" in r.stderr  # this run
    assert "whole crawl  3 requests (3 done, 0 failed), 1 queued" in r.stderr
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert "whole crawl  4 requests (4 done, 0 failed), 0 queued" in r.stderr
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"loopcrawl: the crawl in {state} is complete (4 done, 0 failed); "
                        "nothing to do\n")
    assert len(lines(out)) == 4


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["testsite", "--port", "70000"], "'--port'"),
        (["testsite", "--port", "-1"], "'--port'"),
        (["testsite", "--pages", "0"], "'--pages'"),
        (["demo", "--pages", "0"], "'--pages'"),
        (["demo", "--concurrency", "0"], "'--concurrency'"),
        (["bench", "--io-models", "--processes", "0"], "'--processes'"),
        (["bench", "--io-models", "--seconds-per-run", "0"], "'--seconds-per-run'"),
        (["crawl", "http://127.0.0.1:1/", "--no-such-option"], "--no-such-option"),
        (["crawl"], "URLS"),
    ],
)
def test_bad_values_of_the_other_commands(args: list[str], option: str) -> None:
    from click.testing import CliRunner

    from loopcrawl.cli import main

    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.splitlines()) == 1 and option in r.stderr, r.stderr
    assert r.stderr.startswith("loopcrawl: error: ")


def test_output_under_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "somefile.db").write_text("")
    r = cli("crawl", "http://127.0.0.1:1/", "-o", str(tmp_path / "somefile.db" / "out.jsonl"))
    assert r.returncode == 2
    assert r.stderr == (f"loopcrawl: error: cannot write {tmp_path}/somefile.db/out.jsonl: "
                        f"{tmp_path}/somefile.db is a file, not a directory\n")


def _settings_of(monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """The settings ``loopcrawl ARGS`` would crawl with (the run itself skipped)."""
    from click.testing import CliRunner

    from loopcrawl import cli as cli_module
    from loopcrawl.core.runner import CrawlResult, CrawlRun, Outcome
    from loopcrawl.core.stats import CrawlStats

    got = []

    def no_crawl(self: CrawlRun) -> CrawlResult:
        got.append(self.effective_settings())
        return CrawlResult(CrawlStats(), Outcome.FINISHED, 0)

    monkeypatch.setattr(CrawlRun, "run", no_crawl)
    r = CliRunner().invoke(cli_module.main, [*args, "-q"])
    assert r.exit_code == 0, r.output
    return got[0]


SPIDER = """from loopcrawl import Spider

class S(Spider):
    name = "s"
    start_urls = ["http://127.0.0.1:1/"]
    custom_settings = {"delay": 2.0, "depth": 3, "per_host": 2}
"""


def test_run_takes_the_crawl_options_over_custom_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spider = tmp_path / "s.py"
    spider.write_text(SPIDER)
    s = _settings_of(monkeypatch, "run", str(spider))
    assert (s.delay, s.depth, s.per_host, s.concurrency) == (2.0, 3, 2, 64)
    s = _settings_of(monkeypatch, "run", str(spider), "--depth", "1", "--concurrency", "5",
                     "-s", "per_host=4", "--allow", "a", "--allow", "b", "--ignore-robots")
    assert (s.delay, s.depth, s.per_host, s.concurrency) == (2.0, 1, 4, 5)
    assert (s.allow, s.obey_robots) == (("a", "b"), False)
    # An option wins over -s for the same setting.
    s = _settings_of(monkeypatch, "run", str(spider), "-s", "delay=5", "--delay", "0.5")
    assert s.delay == 0.5


def test_crawl_takes_set_and_every_settings_option(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings_of(monkeypatch, "crawl", "http://127.0.0.1:1/", "-s", "retries=0",
                     "--connect-timeout", "3", "-H", "X-A: 1", "--auth", "u:p",
                     "--max-query-variants", "none", "--timeout", "2")
    assert (s.retries, s.connect_timeout, s.headers, s.http_auth) == (0, 2.0, {"X-A": "1"},
                                                                      ("u", "p"))
    assert s.max_query_variants is None
    assert s.read_timeout == 2.0  # capped by --timeout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--delay", "nan"], "loopcrawl: error: --delay must be a finite number, not nan"),
        (["--per-host", "0"], "loopcrawl: error: --per-host must be at least 1, not 0"),
        (["-s", "per_host=0"], "loopcrawl: error: -s per_host=0: must be at least 1, not 0"),
        (["--max-pages", "0"], "loopcrawl: error: --max-pages must be at least 1, not 0"),
        (["-H", "nocolon"], "loopcrawl: error: --header must be 'Name: value', not 'nocolon'"),
    ],
)
@pytest.mark.parametrize("command", ["crawl", "run"])
def test_bad_settings_name_the_option_in_crawl_and_run(
        tmp_path: Path, command: str, args: list[str], line: str) -> None:
    from click.testing import CliRunner

    from loopcrawl.cli import main

    spider = tmp_path / "s.py"
    spider.write_text(SPIDER)
    target = str(spider) if command == "run" else "http://127.0.0.1:1/"
    r = CliRunner().invoke(main, [command, target, *args])
    assert (r.exit_code, r.stderr) == (2, line + "\n")
