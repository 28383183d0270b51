"""loopcrawl: a web crawler on the asyncio event loop.

The public API is re-exported here; everything else is an implementation
detail that may change.
"""

from __future__ import annotations

from .engine import Crawler, crawl
from .errors import ConfigError, FetchError, LoopcrawlError, StateError
from .http import FetchRecord, Request
from .settings import Settings
from .stats import CrawlStats

__all__ = [
    "ConfigError",
    "CrawlStats",
    "Crawler",
    "FetchError",
    "FetchRecord",
    "LoopcrawlError",
    "Request",
    "Settings",
    "StateError",
    "crawl",
]
__version__ = "0.1.0"
