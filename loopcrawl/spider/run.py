"""The page handler of a spider crawl: callbacks, their output, pipelines, exporters.

``SpiderRun`` keeps the engine's ``PageHandler`` contract (``core/pages.py``),
as the link follower of a crawl without a spider does, so the engine never
asks which kind of crawl it runs.

What a callback yields is handled as it comes: Requests are canonicalized,
scoped, depth-checked and queued in one batch when the callback ends; items
go through the pipelines at once, and to the exporters when the page is done
(with its record, so that a crash-safe crawl writes each page's items once).
"""

from __future__ import annotations

import inspect
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from ..errors import ConfigError, OutputError
from ..http import Callback, Failure, Request, Response
from ..settings import apply_settings
from ..urls import Scope, canonicalize, fingerprint, host_of
from .items import Item, is_item, item_record
from .pipelines import DropItem, run_pipelines
from .remote import CallbackError, call_of, callable_name, callback_outputs

if TYPE_CHECKING:
    from ..core.pages import CrawlParts
    from ..http import FetchRecord
    from ..net.fetched import Fetched
    from ..outputs import Output
    from ..settings import Settings
    from .base import Spider

log = logging.getLogger("loopcrawl.spider")


def spider_settings(settings: Settings, spider: Spider) -> Settings:
    """``settings`` with the spider's ``custom_settings`` applied on top."""
    if not spider.custom_settings:
        return settings
    if not isinstance(spider.custom_settings, Mapping):
        raise ConfigError(f"{spider.name}.custom_settings must be a dict, not "
                          f"{type(spider.custom_settings).__name__}")
    return apply_settings(settings, spider.custom_settings, "custom_settings[{key!r}]")


def spider_scope(settings: Settings, spider: Spider, hosts: Sequence[str] = ()) -> Scope:
    """Any URL, unless ``allowed_domains`` or a ``scope`` in custom_settings says
    otherwise (that scope around ``hosts``: the start requests' ``host:port``)."""
    if spider.allowed_domains:
        seeds = [f"http://{d.strip().lower()}/" for d in spider.allowed_domains]
        return Scope("domain", seeds, settings.allow, settings.deny)
    if "scope" in spider.custom_settings:
        seeds = [f"http://{h}/" for h in hosts] + list(settings.seeds)
        return Scope(settings.scope, seeds, settings.allow, settings.deny)
    return Scope("any", (), settings.allow, settings.deny)


class SpiderRun:
    """One spider in one crawl (a ``PageHandler``)."""

    emits = True  # items wait for their request's ack

    def __init__(
        self,
        parts: CrawlParts,
        spider: Spider,
        exporters: Sequence[Output] = (),
        on_item: Callable[[Any], Any] | None = None,
    ) -> None:
        self._settings = parts.settings
        self._frontier = parts.frontier
        self._stats = parts.stats
        self._traps = parts.traps
        self.spider = spider
        self.exporters = list(exporters)
        self.on_item = on_item
        self.pipelines = list(spider.pipelines)
        self.scope = Scope("any", ())  # set by open(), from the start requests
        self.start_hosts: list[str] = []
        # Items wait for their request's ack (``emit``), lease token -> items.
        self._held: dict[int, list[tuple[dict[str, Any], str, tuple[str, ...] | None]]] = {}
        self._field_warned: set[tuple[str, str]] = set()  # (item type, field) logged

    # -- start and end -----------------------------------------------------------
    async def open(self) -> list[Request]:
        """Call ``opened()`` and collect the start requests (prepared, in scope)."""
        spider = self.spider
        try:
            await _maybe_await(spider.opened())
        except Exception as e:
            self._log_error("opened()", None, e)
            self._stats.errors[errors.CALLBACK_ERROR] += 1
        starts: list[Request] = []
        try:
            gen: Any = spider.start_requests()
            if hasattr(gen, "__aiter__"):
                async for r in gen:
                    starts.extend(self._requests_in(r))
            elif gen is not None:
                for r in gen:
                    starts.extend(self._requests_in(r))
        except Exception as e:
            self._log_error("start_requests()", None, e)
            self._stats.errors[errors.CALLBACK_ERROR] += 1
        starts += [Request(u) for u in self._settings.seeds]
        hosts = []
        for r in starts:
            c = canonicalize(r.url)
            if c is not None:
                hosts.append(host_of(c))
        self.scope = spider_scope(self._settings, spider, hosts)
        self.start_hosts = hosts
        return [p for r in starts if (p := self.prepare(r, None)) is not None]

    async def close(self, reason: str) -> None:
        """Call the spider's ``closed()``, with ``reason`` ("finished",
        "shutdown") when it takes one, as Scrapy's does."""
        try:
            closed: Any = self.spider.closed
            takes_reason = _takes_argument(closed)
            await _maybe_await(closed(reason) if takes_reason else closed())
        except Exception as e:
            self._log_error("closed()", None, e)
        for exp in self.exporters:
            exp.flush()

    # -- requests --------------------------------------------------------------
    def prepare(self, r: Request, parent: Request | None) -> Request | None:
        """``r`` ready for the frontier: canonical URL, fingerprint, depth, and
        checked against scope, depth and traps (None, counted, if refused)."""
        skipped = self._stats.skipped
        if type(r.depth) is not int:
            raise TypeError("Request's second positional argument is depth: "
                            "pass callback= by keyword")
        url = canonicalize(r.url)
        if url is None:
            skipped["invalid_url"] += 1
            log.warning("%s: not an absolute http(s) URL, not fetched: %.200r "
                        "(use response.follow() for relative links)", self.spider.name, r.url)
            return None
        method = r.method.upper()
        if url != r.url or method != r.method or not r.fp:
            r.url, r.method = url, method
            r.fp = fingerprint(url, method, r.body)
        if parent is not None:
            r.depth = parent.depth + 1
            if r.referrer is None:
                r.referrer = parent.url
        s = self._settings
        if s.depth is not None and r.depth > s.depth:
            skipped["depth"] += 1
            return None
        if not self.scope.allows(url):
            skipped["scope"] += 1
            return None
        if not self._traps.filter_links([url], skipped):
            return None
        return r

    def _requests_in(self, x: Any) -> list[Request]:
        if isinstance(x, Request):
            return [x]
        if isinstance(x, list | tuple) and all(isinstance(r, Request) for r in x):
            return list(x)
        raise TypeError(f"start_requests() yielded {type(x).__name__}, not a Request")

    # -- responses and failures --------------------------------------------------
    async def page(self, req: Request, f: Fetched, rec: FetchRecord) -> None:
        """A response arrived: its callback (2xx), its errback (4xx/5xx after
        retries), or nothing (a redirect whose target is crawled elsewhere)."""
        if f.callback is not None:  # run by a worker process already
            await self._called(f.callback, req, rec)
            return
        response = Response(f.url, f.status, f.headers, f.body, req)
        if 200 <= f.status < 300:
            await self._call(req.callback, response, req.cb_kwargs or {}, req, rec)
        elif f.failed:
            rec.error = errors.HTTP_STATUS
            rec.message = f"HTTP {f.status}"
            await self.failed(req, rec, response)

    async def failed(self, req: Request, rec: FetchRecord,
                     response: Response | None = None) -> None:
        """A request failed for good: call its errback (or the spider's)."""
        assert rec.error is not None
        failure = Failure(req, rec.error, rec.message or rec.error, response)
        await self._call(req.errback, failure, {}, req, rec)

    async def _call(self, cb: Callback | str | None, arg: Response | Failure,
                    kwargs: dict[str, Any], req: Request, rec: FetchRecord) -> None:
        """Run a callback (the spider's parse or errback if ``cb`` is None) to its
        end, handling each thing it yields as it comes."""
        new: list[Request] = []
        spider = self.spider
        fn: Any = cb
        try:
            fn = spider.resolve(cb, spider.parse if isinstance(arg, Response) else spider.errback)
            async for x in callback_outputs(fn, arg, kwargs):
                await self._output(x, req, rec, new)
        except OutputError:  # disk full: the crawl must stop, not this page
            raise
        except Exception as e:
            self._callback_failed(callable_name(fn), req, rec, e)
        finally:
            if new:
                await self._frontier.add(new)

    async def _called(self, out: bytes, req: Request, rec: FetchRecord) -> None:
        """What ``req``'s callback yielded in a worker process (``remote.run_call``):
        handled as if it had been yielded here, its error logged and recorded
        the same way."""
        try:
            things, error = pickle.loads(out)
        except Exception as e:  # an item class this process cannot import
            things, error = [], CallbackError("a worker's callback", type(e).__name__,
                                              f"its output cannot be read here: {e}", "")
        new: list[Request] = []
        try:
            for x in things:
                await self._output(x, req, rec, new)
        except OutputError:
            raise
        except Exception as e:  # as if raised at its yield: the rest is not handled
            fn = self.spider.resolve(req.callback, self.spider.parse)  # the worker's did
            self._callback_failed(callable_name(fn), req, rec, e)
            error = None
        finally:
            if new:
                await self._frontier.add(new)
        if error is not None:
            log.error("%s: %s failed on %s: %s: %s\n%s", self.spider.name, error.where, req.url,
                      error.kind, error.message, error.trace.rstrip())
            rec.error = errors.CALLBACK_ERROR
            rec.message = f"{error.where}: {error.kind}: {error.message}"[:1000]

    def _callback_failed(self, name: str, req: Request, rec: FetchRecord,
                         e: Exception) -> None:
        self._log_error(name, req.url, e)
        rec.error = errors.CALLBACK_ERROR
        rec.message = f"{name}: {type(e).__name__}: {e}"[:1000]

    def remote_call(self, req: Request) -> bytes | None:
        """What a worker process needs to run ``req``'s callback on its
        response (None: run it here)."""
        return call_of(req, self.spider)

    async def _output(self, x: Any, req: Request, rec: FetchRecord, new: list[Request]) -> None:
        if x is None:
            return
        if isinstance(x, Request):
            r = self.prepare(x, req)
            if r is not None:
                new.append(r)
        elif is_item(x):
            await self._item(x, req, rec)
        elif isinstance(x, list | tuple):
            for y in x:
                await self._output(y, req, rec, new)
        else:  # counted like a callback error, and the callback goes on
            e = TypeError(f"a callback yielded {type(x).__name__}: expected a Request, "
                          "a list of them, an item (Item, dict, dataclass) or None")
            log.error("%s: on %s: %s", self.spider.name, req.url, e)
            rec.error = errors.CALLBACK_ERROR
            rec.message = str(e)

    async def _item(self, item: Any, req: Request, rec: FetchRecord) -> None:
        items = self._stats.items
        if isinstance(item, Item) and item.errors:
            items["field_error"] += len(item.errors)
            for k, msg in item.errors.items():
                # Once per field at WARNING (a broken selector fails on every
                # page: the summary counts them all), then at DEBUG.
                where = (type(item).__name__, k)
                first = where not in self._field_warned
                self._field_warned.add(where)
                log.log(logging.WARNING if first else logging.DEBUG, "%s: %s.%s on %s: %s%s",
                        self.spider.name, *where, req.url, msg,
                        " (more errors of this field are counted in the summary and shown "
                        "at --log-level DEBUG)" if first else "")
        try:
            item = await run_pipelines(self.pipelines, item, self.spider)
            kind, fields, data = item_record(item)
        except DropItem as e:
            items["dropped"] += 1
            log.debug("%s: item dropped on %s: %s", self.spider.name, req.url, e)
            return
        except Exception as e:
            items["pipeline_error"] += 1
            self._log_error("a pipeline", req.url, e)
            if rec.error is None:
                rec.error = errors.PIPELINE_ERROR
                rec.message = f"{type(e).__name__}: {e}"[:1000]
            return
        if self.exporters:
            self._held.setdefault(req.lease, []).append((data, kind, fields))
        if self.on_item is not None:
            self.on_item(item)
        items["scraped"] += 1

    def emit(self, req: Request) -> None:
        """Write ``req``'s items to the exporters. The engine calls this as it
        acks ``req``, so a checkpoint (``--state``) never holds the items of a
        page that is not done, nor a done page without its items."""
        held = self._held.pop(req.lease, None)
        if held:
            for exp in self.exporters:
                for data, kind, fields in held:
                    exp.write_item(data, kind, fields)

    def drop(self, req: Request) -> None:
        """Forget ``req``'s items: it was abandoned, and will be fetched again."""
        self._held.pop(req.lease, None)

    def _log_error(self, what: str, url: str | None, e: BaseException) -> None:
        where = f" on {url}" if url else ""
        log.error("%s: %s failed%s: %s: %s", self.spider.name, what, where, type(e).__name__, e,
                  exc_info=e)


async def _maybe_await(x: Any) -> Any:
    if inspect.isawaitable(x):
        return await x
    return x


def _takes_argument(fn: Any) -> bool:
    """Whether ``fn`` (a bound method) accepts one positional argument."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind("finished")
    except TypeError:
        return False
    return True
