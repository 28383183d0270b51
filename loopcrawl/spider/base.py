"""Spiders: the user's side of a crawl, as callbacks on responses.

    class Shop(Spider):
        start_urls = ["http://127.0.0.1:8000/shop/"]

        async def parse(self, response):
            for book in Book.all(response):
                yield book
            yield response.follow_all(css="li.next a")

A callback takes a ``Response`` (and the request's ``cb_kwargs``) and may be
an async generator, a generator, a coroutine or a plain function; what it
yields or returns may be a ``Request``, a list of them, an item (an ``Item``,
a dict or a dataclass instance) or None. Requests go to the frontier
(canonicalized, deduplicated, checked against the scope), items through the
spider's ``pipelines`` to the exporters.

Which URLs a spider may fetch: any, unless ``allowed_domains`` is set (those
domains and their subdomains), or ``custom_settings`` sets ``scope`` (then
that scope around the start requests' hosts). The ``allow``/``deny``
settings apply either way, and so does robots.txt.

An exception in a callback is logged with the URL and counted
(``callback_error`` on the page's record); the crawl goes on.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError
from ..http import Callback, Request

if TYPE_CHECKING:
    from ..http import Failure, Response

__all__ = ["Spider", "exec_spider_file", "load_spider"]


# An item pipeline: ``pipeline(item, spider)``, sync or async (``pipelines.py``).
Pipeline = Callable[[Any, "Spider"], Any | Awaitable[Any]]


class Spider:
    """Subclass it: set ``start_urls`` (or write ``start_requests``) and ``parse``."""

    #: Names the spider in logs and in ``loopcrawl run --spider NAME``; the class name by default.
    name: ClassVar[str] = ""
    start_urls: ClassVar[Sequence[str]] = ()
    #: Domains the spider may fetch from (subdomains included); empty: any.
    allowed_domains: ClassVar[Sequence[str]] = ()
    #: ``Settings`` fields for this spider (``loopcrawl run -s`` still overrides them).
    custom_settings: Mapping[str, Any] = MappingProxyType({})
    #: Called in order on every item: see ``pipelines.py``.
    pipelines: ClassVar[Sequence[Pipeline]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__

    @property
    def logger(self) -> logging.Logger:
        """``loopcrawl.spider.NAME``: shown from INFO up unless ``--log-level``
        says otherwise (ERROR with ``--quiet``), as Scrapy shows a spider's log."""
        return logging.getLogger(f"loopcrawl.spider.{self.name}")

    async def start_requests(self) -> AsyncIterator[Request]:
        """The first requests (``start_urls`` by default; callback ``parse``).

        Consumed in full before the first fetch, so it may await (a login, an
        API listing the URLs); for millions of start URLs use a frontier.
        """
        for url in self.start_urls:
            yield Request(url)

    def parse(self, response: Response) -> Any:
        """The callback of requests that name none."""
        raise NotImplementedError(f"{type(self).__name__}.parse() is not defined: write it, "
                                  "or give each Request a callback")

    def errback(self, failure: Failure) -> Any:
        """Called when a request without its own errback fails (after its
        retries): a timeout, robots.txt, an HTTP error status. It may yield
        Requests and items as a callback does. The failure is recorded either way."""
        return None

    def opened(self) -> Any:
        """Called (and awaited, if async) once before the crawl starts."""
        return None

    def closed(self, reason: str) -> Any:
        """Called (and awaited, if async) once after the crawl ends, however it
        ends, with why, as Scrapy says it: "finished" (nothing left to fetch),
        "closespider_pagecount" (the max_pages budget is spent), "shutdown"
        (Ctrl-C, SIGTERM, ``Crawler.stop()``) or "error" (an output could not be
        written). A ``closed(self)`` without the argument is called without it."""
        return None

    # -- callbacks by name (so a persistent frontier can store them) ----------
    def callback_name(self, cb: Callback | str | None) -> str | None:
        """The name a callback is stored under: a method of this spider by its
        name; None for the default. Raises ValueError for any other callable
        (a lambda cannot be written to disk)."""
        if cb is None or isinstance(cb, str):
            return cb
        if inspect.ismethod(cb) and cb.__self__ is self:
            return cb.__name__
        raise ValueError(f"{cb!r} is not a method of the spider: it cannot be stored by name")

    def resolve(self, cb: Callback | str | None, default: Callback) -> Callback:
        """The callable behind ``cb``: a method name looked up on the spider."""
        if cb is None:
            return default
        if isinstance(cb, str):
            fn = getattr(self, cb, None)
            if not callable(fn):
                raise AttributeError(f"{type(self).__name__} has no method {cb!r}")
            return fn  # type: ignore[no-any-return]
        return cb


def exec_spider_file(path: str, module_name: str) -> ModuleType:
    """Run the spider file ``path`` as the module ``module_name`` (a worker
    process of ``--workers`` loads it under the coordinator's name, so that
    what is pickled there unpickles here). Raises ConfigError, in one line."""
    p = Path(path)
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look it up
    sys.path.insert(0, str(p.resolve().parent))  # its own helper modules
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        where = ""  # a SyntaxError names its line itself
        tb = None if isinstance(e, SyntaxError) else e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(p):
                where = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise ConfigError(f"{path} does not import: {type(e).__name__}: {e}{where}") from None
    finally:
        sys.path.remove(str(p.resolve().parent))
    return module


def load_spider(path: str, name: str | None = None) -> type[Spider]:
    """The Spider class defined in the Python file ``path`` (the one named
    ``name`` if it defines several). Raises ConfigError with one line that
    says what is wrong: the file is missing, does not import, or has no spider."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such file")
    module_name = f"_loopcrawl_spider_{abs(hash(str(p.resolve())))}"
    module = exec_spider_file(str(p), module_name)
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Spider) and v is not Spider
             and v.__module__ == module_name]
    if name is not None:
        found = [c for c in found if c.name == name or c.__name__ == name]
        if not found:
            raise ConfigError(f"{path} defines no spider named {name!r}")
    if not found:
        raise ConfigError(f"{path} defines no Spider subclass")
    if len(found) > 1:
        names = ", ".join(sorted(c.name for c in found))
        raise ConfigError(f"{path} defines several spiders ({names}): choose one with --spider")
    return found[0]
