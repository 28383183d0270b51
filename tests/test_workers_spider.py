"""--workers N with a spider: callbacks run in the worker processes, items pass
the pipelines and exporters in the coordinator only.

A real spider file, run as a user runs it (``loopcrawl run spider.py
--workers 2``) against the test site's shop, compared with the same spider in
one process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopcrawl.testsite import ServerThread

pytestmark = pytest.mark.timeout(120)

SPIDER = '''
import os

from loopcrawl import Dedup, Spider


class Books(Spider):
    start_urls = [os.environ["SHOP_URL"]]
    pipelines = [Dedup("category")]  # one item per category, across all workers

    async def parse(self, response):
        self.logger.error("listing page %s", response.url.split("/shop/")[1] or "first")
        self.logger.warning("not shown with -q")
        yield response.follow_all(css="article.product_pod h3 a", callback=self.parse_book,
                                  cb_kwargs={"listing": response.url})
        yield response.follow_all(css="li.next a")

    def parse_book(self, response, listing):
        if response.url.endswith("7/"):
            yield {"category": "never", "pid": os.getpid()}
            raise ValueError("boom on /book/" + response.url.split("/book/")[1])
        yield {"category": response.css(".breadcrumb li:nth-child(2) a::text").get(),
               "pid": os.getpid(), "from_listing": listing.startswith(os.environ["SHOP_URL"])}
        yield {"book": response.css(".product_main h1::text").get(), "pid": os.getpid(),
               "category": "book " + response.url}
'''


def run(tmp: Path, shop: ServerThread, workers: int) -> dict[str, Any]:
    spider = tmp / "books_spider.py"
    spider.write_text(SPIDER)
    out, stats = tmp / f"items{workers}.jsonl", tmp / f"stats{workers}.json"
    env = {**os.environ, "SHOP_URL": shop.base_url + "/shop/"}
    p = subprocess.Popen([sys.executable, "-m", "loopcrawl", "run", str(spider), "-O", str(out),
                          "--stats", str(stats), "-q", "--workers", str(workers),
                          "--concurrency", "8"], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=100)
    assert p.returncode == 0, err
    failures = sorted(m.group(0) for m in re.finditer(r"Books: .* failed on .*", err))
    return {"pid": p.pid, "items": [json.loads(x) for x in out.read_text().splitlines()],
            "stats": json.loads(stats.read_text()), "failures": failures, "stderr": err}


def test_callbacks_run_in_the_workers_with_the_items_of_one_process(
        shop: ServerThread, tmp_path: Path) -> None:
    one, two = run(tmp_path, shop, 1), run(tmp_path, shop, 2)

    def without_pid(items: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps({k: v for k, v in it.items() if k != "pid"}, sort_keys=True)
                      for it in items)

    books = shop.server.shop.books
    assert len(two["items"]) == len(one["items"]) == 12 + len(books) - 30 + 1
    assert without_pid(two["items"]) == without_pid(one["items"])
    # Dedup in one place: one item per category in all, though two processes parsed.
    categories = [it["category"] for it in two["items"] if "book" not in it]
    assert sorted(categories) == sorted({b.category for b in books} | {"never"})
    assert all(it.get("from_listing", True) for it in two["items"])  # cb_kwargs crossed
    # The callbacks ran in the two worker processes, not in the coordinator.
    assert {it["pid"] for it in one["items"]} == {one["pid"]}
    pids = {it["pid"] for it in two["items"]}
    assert len(pids) == 2 and two["pid"] not in pids
    # A callback's error: logged with its URL and counted, as in one process.
    assert len(two["failures"]) == 30 and two["failures"] == one["failures"]
    assert any(f.endswith("/shop/book/7/: ValueError: boom on /book/7/")
               for f in two["failures"])
    assert "Traceback" in two["stderr"] and 'raise ValueError("boom' in two["stderr"]
    for r in (one, two):
        assert r["stats"]["error"] == {"callback_error": 30}
        assert r["stats"]["items"]["dropped"] == len(books) - 30 - 12 + 30 - 1
    assert two["stats"]["workers"]["workers"] == 2
    # What a callback logs in a worker is logged by the coordinator, by its levels.
    listed = [sorted(re.findall(r"listing page \S+", r["stderr"])) for r in (one, two)]
    assert len(listed[0]) == 15 and listed[1] == listed[0]
    assert "not shown" not in one["stderr"] + two["stderr"]


def test_a_spider_workers_cannot_import_has_its_callbacks_run_here(shop: ServerThread) -> None:
    """A class defined inside a function cannot be loaded by a worker process:
    its callbacks run in the coordinator, and the crawl is the same."""
    from loopcrawl import Settings, Spider, crawl

    start = shop.base_url + "/shop/"

    class Local(Spider):
        start_urls = [start]

        def parse(self, response: Any) -> Any:
            yield {"url": response.url, "pid": os.getpid()}
            yield response.follow_all(css="li.next a", callback=lambda r: self.parse(r))

    items: list[dict[str, Any]] = []
    crawl(Settings(workers=2, quiet=True), spider=Local(), on_item=items.append)
    assert len(items) == 15 and {it["pid"] for it in items} == {os.getpid()}
    assert {it["url"] for it in items} >= {start}
