"""The Crawlee for Python peer: the benchmark's crawl, the plain Crawlee way.

Run with the Crawlee virtualenv's Python (benchmarks/.venvs/crawlee):

    python crawlee_spider.py URL OUT.jsonl [--concurrency 8]

``ParselCrawler`` (lxml-based, cheaper than BeautifulSoup) with Crawlee's
default HTTP client. Equivalent to loopcrawl's defaults: robots.txt obeyed,
same origin only (``enqueue_links(strategy="same-origin")``, every ``<a href>``),
duplicates filtered by the request queue, one JSON line per page written by
the handler. Crawlee has no per-host limit, so its global concurrency is
pinned (min = desired = max) to the per-host limit the others get on this
one-host site; the autoscaler cannot wander. Retries and the session pool
(cookies) are off; in-memory storage, like loopcrawl's and Scrapy's queues.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from crawlee import ConcurrencySettings
from crawlee.crawlers import ParselCrawler, ParselCrawlingContext
from crawlee.storage_clients import MemoryStorageClient


async def crawl(url: str, out: str, concurrency: int) -> None:
    with open(out, "w", buffering=1 << 16) as fh:
        crawler = ParselCrawler(
            concurrency_settings=ConcurrencySettings(
                min_concurrency=concurrency,
                desired_concurrency=concurrency,
                max_concurrency=concurrency,
            ),
            respect_robots_txt_file=True,
            max_request_retries=0,
            use_session_pool=False,
            retry_on_blocked=False,
            storage_client=MemoryStorageClient(),
            configure_logging=False,
        )

        @crawler.router.default_handler
        async def handler(ctx: ParselCrawlingContext) -> None:
            fh.write(json.dumps({
                "url": ctx.request.loaded_url or ctx.request.url,
                "status": ctx.http_response.status_code,
                "title": ctx.selector.css("title::text").get(),
                "depth": ctx.request.crawl_depth,
            }) + "\n")
            await ctx.enqueue_links(selector="a, area", strategy="same-origin")

        await crawler.run([url])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(crawl(a.url, a.out, a.concurrency))


if __name__ == "__main__":
    main()
