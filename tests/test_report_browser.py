"""The HTML report opened in a real headless Chromium (Debian's ``chromium``,
installed by ``.ci/run``), driven by Playwright: it renders with no console
error and no request beyond the file itself, every chart is drawn, and what a
hostile site put in its URLs and messages stays text."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopcrawl.report import render_report, stats_from_records
from loopcrawl.testsite import ServerThread

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)",
                allow_module_level=True)

EVIL = '"><script>document.title="pwned"</script><img src=x onerror="console.error(1)">'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: .ci/run installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=30_000)
        yield b
        b.close()


def open_report(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """The page, its console errors and uncaught exceptions, and every URL it asked for."""
    page = browser.new_page(viewport={"width": 1240, "height": 900})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def test_report_of_a_real_crawl_renders_every_chart(browser: Any, testsite: ServerThread,
                                                    tmp_path: Path) -> None:
    path, stats = tmp_path / "report.html", tmp_path / "stats.json"
    p = subprocess.run([sys.executable, "-m", "loopcrawl", "crawl", testsite.base_url + "/",
                        "--report", str(path), "--stats", str(stats), "-q"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    s = json.loads(stats.read_text())
    page, errors, requests = open_report(browser, path)
    assert errors == []
    assert requests == [path.as_uri()]  # no CDN, no font, no image from elsewhere
    charts = page.locator("svg.chart")
    assert charts.count() == 9
    for i in range(charts.count()):  # each chart drew something, with a size on screen
        chart = charts.nth(i)
        assert chart.locator(".mark").count() > 0, chart.get_attribute("aria-label")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20
    marks = page.locator('svg[aria-label="Status codes"] rect.mark')
    assert marks.count() == len(s["status"])
    titles = [marks.nth(i).locator("title").text_content() for i in range(marks.count())]
    assert titles == [f"{k}: {v:,}" for k, v in s["status"].items()]
    depth = page.locator('svg[aria-label="Pages by link depth"] rect.mark')
    assert depth.count() == len(s["depth"])
    timeline = page.locator('svg[aria-label="pages per second over time"] circle.mark')
    assert timeline.count() == len(s["timeline"]["records"]) * 2  # pages/s, failed/s
    hist = page.locator('svg[aria-label="response time histogram"] rect.mark')
    assert hist.count() == len(s["response_ms"]["histogram"])
    # The numbers are in the page for whoever wants them back.
    data = page.locator("#loopcrawl-stats").inner_text()
    assert json.loads(data)["records"] == s["records"]


def test_hostile_urls_and_messages_stay_text(browser: Any, tmp_path: Path) -> None:
    records = [
        {"url": "http://a.example/", "depth": 0, "fetched_at": 1000.0, "status": 200,
         "content_type": "text/html", "bytes": 10, "elapsed_ms": 3.0, "links": 1},
        {"url": "http://a.example/x" + EVIL, "depth": 1, "fetched_at": 1000.5,
         "status": 500, "content_type": "text/html" + EVIL, "bytes": 1, "elapsed_ms": 900.0,
         "error": "http_status" + EVIL, "message": EVIL},
        {"url": "javascript:alert(1)//" + EVIL, "depth": 1, "fetched_at": 1001.0,
         "status": None, "error": "timeout", "message": "</script>" + EVIL},
    ]
    path = tmp_path / "evil.html"
    path.write_text(render_report(stats_from_records(records).to_json(), title=EVIL))
    page, errors, requests = open_report(browser, path)
    assert errors == []
    assert requests == [path.as_uri()]  # the <img src=x> was not an image
    assert page.title() == EVIL
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the JSON data block, nothing injected
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert EVIL in page.locator("body").inner_text()
    assert json.loads(page.locator("#loopcrawl-stats").inner_text())["records"] == 3


def test_empty_crawl_report_opens(browser: Any, tmp_path: Path) -> None:
    """A crawl whose only record failed (no response at all) still gets a report."""
    records = [{"url": "http://down.example/", "depth": 0, "fetched_at": 5.0, "status": None,
                "error": "connection_error", "message": "refused"}]
    path = tmp_path / "empty.html"
    path.write_text(render_report(stats_from_records(records).to_json()))
    page, errors, _ = open_report(browser, path)
    assert errors == []
    assert "no responses" in page.locator("body").inner_text()
    assert page.locator('svg[aria-label="errors by kind"] rect.mark').count() == 1
