"""loopcrawl: a web crawler on the asyncio event loop.

The public API is re-exported here; everything else is an implementation
detail that may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.engine import Crawler
    from .core.runner import CrawlResult, CrawlRun, crawl
    from .core.stats import CrawlStats
    from .errors import ConfigError, ErrorKind, FetchError, LoopcrawlError, OutputError, StateError
    from .http import Failure, FetchRecord, Request, Response
    from .settings import Settings
    from .spider import Spider
    from .spider.items import AttrField, Field, Item, TextField
    from .spider.pipelines import Dedup, DropItem

# Where each public name lives, imported when first asked for (PEP 562): a
# worker process of --workers imports ``loopcrawl.workers.child``, and with it
# this package, but needs neither the engine nor the outputs nor the spider
# runner, whose imports were a tenth of its start-up.
_WHERE = {
    "AttrField": ".spider.items", "ConfigError": ".errors", "CrawlResult": ".core.runner",
    "CrawlRun": ".core.runner", "CrawlStats": ".core.stats", "Crawler": ".core.engine",
    "Dedup": ".spider.pipelines", "DropItem": ".spider.pipelines", "ErrorKind": ".errors",
    "Failure": ".http", "FetchError": ".errors", "FetchRecord": ".http",
    "Field": ".spider.items", "Item": ".spider.items", "LoopcrawlError": ".errors",
    "OutputError": ".errors", "Request": ".http", "Response": ".http",
    "Settings": ".settings", "Spider": ".spider", "StateError": ".errors",
    "TextField": ".spider.items", "crawl": ".core.runner",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'loopcrawl' has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
