"""loopcrawl: a web crawler on the asyncio event loop.

The public API is re-exported here; everything else is an implementation
detail that may change.
"""

from __future__ import annotations

from .engine import Crawler, crawl
from .errors import ConfigError, FetchError, LoopcrawlError, StateError
from .http import Failure, FetchRecord, Request, Response
from .items import AttrField, Field, Item, TextField
from .pipelines import Dedup, DropItem
from .settings import Settings
from .spider import Spider
from .stats import CrawlStats

__all__ = [
    "AttrField",
    "ConfigError",
    "CrawlStats",
    "Crawler",
    "Dedup",
    "DropItem",
    "Failure",
    "FetchError",
    "FetchRecord",
    "Field",
    "Item",
    "LoopcrawlError",
    "Request",
    "Response",
    "Settings",
    "Spider",
    "StateError",
    "TextField",
    "crawl",
]
__version__ = "0.1.0"
