"""loopcrawl: a web crawler on the asyncio event loop.

The public API is re-exported here; everything else is an implementation
detail that may change.
"""

from __future__ import annotations

from .core.engine import Crawler
from .core.runner import CrawlResult, CrawlRun, crawl
from .core.stats import CrawlStats
from .errors import ConfigError, ErrorKind, FetchError, LoopcrawlError, OutputError, StateError
from .http import Failure, FetchRecord, Request, Response
from .settings import Settings
from .spider import Spider
from .spider.items import AttrField, Field, Item, TextField
from .spider.pipelines import Dedup, DropItem

__all__ = [
    "AttrField",
    "ConfigError",
    "CrawlResult",
    "CrawlRun",
    "CrawlStats",
    "Crawler",
    "Dedup",
    "DropItem",
    "ErrorKind",
    "Failure",
    "FetchError",
    "FetchRecord",
    "Field",
    "Item",
    "LoopcrawlError",
    "OutputError",
    "Request",
    "Response",
    "Settings",
    "Spider",
    "StateError",
    "TextField",
    "crawl",
]
__version__ = "0.1.0"
