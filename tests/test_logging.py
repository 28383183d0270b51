"""Logging and Scrapy's spider habits: ``closed(reason)``, ``self.logger`` at
the chosen level, ``--log-file``, ``-q``, and the library's own log lines."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from loopcrawl import Response, Settings, Spider, crawl

from .conftest import PageServer


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopcrawl", *args], capture_output=True,
                          text=True, timeout=60)


def dead_port() -> int:
    with socket.socket() as s:  # bound, closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_closed_gets_the_reason(pages: PageServer) -> None:
    pages.add("/", links=["/a", "/b"])
    pages.add("/a")
    pages.add("/b")
    reasons: list[str] = []
    base = pages.url

    class S(Spider):
        start_urls = [base + "/"]

        def parse(self, response: Response) -> Any:
            return response.follow_all(css="a")

        def closed(self, reason: str) -> None:
            reasons.append(reason)

    crawl(Settings(timeout=10.0), spider=S())
    crawl(Settings(timeout=10.0, max_pages=1), spider=S())
    assert reasons == ["finished", "closespider_pagecount"]


def test_closed_without_the_argument_still_works(pages: PageServer) -> None:
    pages.add("/")
    calls: list[tuple[Any, ...]] = []
    base = pages.url

    class S(Spider):
        start_urls = [base + "/"]

        def parse(self, response: Response) -> None:
            return None

        async def closed(self, *args: Any) -> None:  # async, and any signature
            calls.append(args)

    class Old(S):
        def closed(self) -> None:  # type: ignore[override]
            calls.append(("old",))

    crawl(Settings(timeout=10.0), spider=S())
    crawl(Settings(timeout=10.0), spider=Old())
    assert calls == [("finished",), ("old",)]


SPIDER = '''
from loopcrawl import Field, Item, Spider


class Book(Item):
    title = Field(css="title")
    price = Field(css=".price", required=True)


class Shop(Spider):
    start_urls = ["{base}/", "{base}/b"]
    custom_settings = {{"obey_robots": False}}

    def parse(self, response):
        self.logger.info("parsed %s", response.url)
        self.logger.debug("details of %s", response.url)
        yield Book.one(response)

    def closed(self, reason):
        self.logger.warning("closed: %s", reason)
'''


def shop(pages: PageServer, tmp_path: Path) -> str:
    pages.add("/", title="A")
    pages.add("/b", title="B")
    path = tmp_path / "shop.py"
    path.write_text(SPIDER.format(base=pages.url))
    return str(path)


def test_spider_logger_shows_info_by_default(pages: PageServer, tmp_path: Path) -> None:
    r = cli("run", shop(pages, tmp_path), "-o", str(tmp_path / "items.jsonl"))
    assert r.returncode == 0, r.stderr
    assert f"[Shop] info: parsed {pages.url}/\n" in r.stderr
    assert "details of" not in r.stderr
    assert "[Shop] warning: closed: finished" in r.stderr
    # A field that fails on every page: one warning, all counted in the summary.
    assert r.stderr.count("Book.price on") == 1
    assert "more errors of this field are counted" in r.stderr


def test_quiet_shows_only_errors(pages: PageServer, tmp_path: Path) -> None:
    r = cli("run", shop(pages, tmp_path), "-q", "-o", str(tmp_path / "items.jsonl"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_log_level_and_log_file(pages: PageServer, tmp_path: Path) -> None:
    log = tmp_path / "crawl.log"
    r = cli("run", shop(pages, tmp_path), "-o", str(tmp_path / "items.jsonl"),
            "--log-level", "debug", "--log-file", str(log))
    assert r.returncode == 0, r.stderr
    assert "parsed" not in r.stderr  # the log went to the file instead
    text = log.read_text()
    assert f"[Shop] debug: details of {pages.url}/b" in text
    assert text.count("Book.price on") == 2  # the second one at DEBUG
    r = cli("run", shop(pages, tmp_path), "-q", "-s", "log_level=error")
    assert r.returncode == 0 and r.stderr == ""
    r = cli("run", shop(pages, tmp_path), "--log-file", str(tmp_path / "no" / "dir.log"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"loopcrawl: error: cannot write the log file "
                                     f"{tmp_path / 'no' / 'dir.log'}: No such file or directory"]


def test_failures_and_retries_are_logged_with_url_and_kind(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{dead_port()}/"
    r = cli("crawl", url, "--ignore-robots", "--retries", "1", "--retry-backoff", "0.01",
            "-q", "--log-level", "debug")
    lines = r.stderr.splitlines()
    assert r.returncode == 3, r.stderr  # nothing could be crawled
    assert any(line.startswith(f"loopcrawl: debug: retrying {url} in 0.0 s or a little more "
                               "(attempt 2 of 2): connection_refused") for line in lines), lines
    assert any(line.startswith(f"loopcrawl: info: connection_refused {url}: ")
               for line in lines), lines
    r = cli("crawl", url, "--ignore-robots", "--retries", "0")  # default level: the display only
    assert "connection_refused " + url not in r.stderr


def test_robots_outcome_is_logged(pages: PageServer) -> None:
    pages.add("/")
    r = cli("crawl", pages.url + "/", "-q", "--log-level", "info")
    assert r.returncode == 0, r.stderr
    assert f"loopcrawl: info: {pages.url.removeprefix('http://')}: robots.txt answered 404: " \
           "no rules, everything allowed" in r.stderr


def test_back_offs_and_robots_errors_are_logged(pages: PageServer, caplog: Any) -> None:
    pages.add("/robots.txt", status=503, body="busy")
    pages.add("/", status=429, headers={"Retry-After": "1"})
    host = pages.url.removeprefix("http://")
    caplog.set_level(logging.DEBUG, logger="loopcrawl")

    def logged() -> list[str]:
        crawl(Settings(seeds=(pages.url + "/",), retries=1, retry_backoff=0.01,
                       robots_error_retry=0.0, timeout=10.0))
        text = [r.getMessage() for r in caplog.records if r.name == "loopcrawl"]
        caplog.clear()
        return text

    text = logged()
    assert f"{host}: robots.txt answered 503; asked again at the next page's try" in text
    assert f"robots_unreachable {pages.url}/: robots.txt answered 503" in text
    pages.add("/robots.txt", status=404)
    text = logged()
    assert f"{host}: robots.txt answered 404: no rules, everything allowed" in text
    assert f"{host} answered 429 with Retry-After: it gets no request for 1.0 s" in text
    assert any(t.startswith(f"{host} answered 429 or 503: one request every ") for t in text)
    # The retry waits for Retry-After itself (1.0 s), not its 0.01 s back-off.
    assert f"retrying {pages.url}/ in 1.0 s or a little more (attempt 2 of 2): HTTP 429" in text
    assert f"http_status {pages.url}/: HTTP 429" in text
