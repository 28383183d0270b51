"""The Scrapy peer: the benchmark's crawl, written the plain Scrapy way.

Run with the Scrapy virtualenv's Python (benchmarks/.venvs/scrapy):

    python scrapy_spider.py URL OUT.jsonl [--concurrency 64] [--per-host 8]

Equivalent to loopcrawl's defaults: robots.txt obeyed, same host:port only
(checked here, since ``allowed_domains`` ignores the port), every ``<a href>``
followed, fragments dropped, duplicates filtered by Scrapy's request
fingerprint, one JSON line per page. Autothrottle, cookies, retries and the
telnet console are off; log level WARNING.
"""

from __future__ import annotations

import argparse
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import TextResponse


class SiteSpider(scrapy.Spider):
    """Follow every same-origin link; yield one item per page."""

    name = "bench"

    def __init__(self, start_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.netloc = urlsplit(start_url).netloc

    # The start request goes through the dupe filter too: Scrapy's default start
    # requests skip it (dont_filter=True), so the first link back to "/" would
    # fetch the home page a second time.
    async def start(self):  # type: ignore[no-untyped-def]  # Scrapy >= 2.13
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse)

    def start_requests(self):  # type: ignore[no-untyped-def]  # Scrapy < 2.13
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):  # type: ignore[no-untyped-def]
        if not isinstance(response, TextResponse):
            yield {"url": response.url, "status": response.status}
            return
        yield {
            "url": response.url,
            "status": response.status,
            "title": response.css("title::text").get(),
            "depth": response.meta.get("depth", 0),
        }
        for href in response.css("a::attr(href), area::attr(href)").getall():
            url = urldefrag(response.urljoin(href.strip()))[0]
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc == self.netloc:
                yield scrapy.Request(url, callback=self.parse)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--per-host", type=int, default=8)
    a = ap.parse_args()
    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": a.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": a.per_host,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "FEEDS": {a.out: {"format": "jsonlines", "overwrite": True}},
    })
    process.crawl(SiteSpider, start_url=a.url)
    process.start()


if __name__ == "__main__":
    main()
