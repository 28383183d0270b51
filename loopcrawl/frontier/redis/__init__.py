"""One crawl shared by many workers on many machines, kept in Redis.

``RedisCrawl`` is the crawl's record (settings, seeds, the seen set, the
queue, leases, counters; key layout in ``keys.py``); ``crawl.frontier(id)``
is a worker's ``RedisFrontier``, the ordinary ``Frontier`` contract with
real lease deadlines. Nothing here is imported unless a crawl is a Redis one.
"""

from __future__ import annotations

from ._reconnect import Reconnecting
from .crawl import DEFAULT_EXPECTED_URLS, RedisCrawl, seen_bits
from .frontier import DEFAULT_LEASE_TTL, RedisFrontier
from .gate import RedisHostGate
from .keys import CrawlKeys, check_name
from .robots import RedisRobots
from .status import GONE_AFTER, CrawlStatus, WorkerStatus

__all__ = ["DEFAULT_EXPECTED_URLS", "DEFAULT_LEASE_TTL", "GONE_AFTER", "CrawlKeys", "CrawlStatus",
           "Reconnecting", "RedisCrawl", "RedisFrontier", "RedisHostGate", "RedisRobots",
           "WorkerStatus", "check_name", "seen_bits"]
