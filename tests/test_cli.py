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

    got = []
    monkeypatch.setattr(cli_module, "run_crawl", lambda settings, *a, **k: got.append(settings) or 0)
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
