"""The crawl on one event loop: N worker coroutines fed by the scheduler.

    seeds ─► Frontier ─► Scheduler (host slots) ─► worker ─► robots ─► Fetcher
               ▲                                                        │
               └── canonicalize + scope + depth + seen ◄── links ◄──────┘

A page found on page A is queued only after A is parsed; independent pages
are in flight together, up to ``concurrency`` of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from ..errors import ConfigError, ErrorKind, FetchError, LoopcrawlError, OutputError
from ..frontier import Checkpointing, Frontier, MemoryFrontier
from ..http import FetchRecord, Request
from ..net.auth import BasicAuth
from ..net.fetched import Fetched, Hop
from ..net.robots import RobotsCache, RobotsStore, RobotsUnavailable, SharedRobots
from ..outputs import Output, resumable_formats
from ..settings import Settings
from ..spider.run import SpiderRun, spider_settings
from ..urls import Scope, fingerprint, host_of
from ..workers import ProcessFetcher, WorkerLost
from .hostgate import HostGate
from .pages import CrawlParts, LinkFollower, PageHandler, seed_sitemaps
from .politeness import Scheduler
from .remote import RemoteFetch
from .runtime import new_event_loop, tune_malloc
from .stats import CrawlStats
from .traps import TrapGuard

_log = logging.getLogger("loopcrawl")

if TYPE_CHECKING:
    from ..net.fetcher import Fetcher
    from ..spider.base import Spider

__all__ = ["Crawler", "new_event_loop", "tune_malloc"]

# The longest Retry-After a retry waits for. A longer one (a day: maintenance,
# a rate limit's period, or a hostile server holding a crawl for ever) is not
# waited for: the page is recorded with its status, and its host gets no
# request for this long.
MAX_RETRY_AFTER = 120.0

RecordHook = Callable[[FetchRecord], Any]


class Crawler:
    """One crawl: settings in, records out (to ``outputs`` and ``on_record``).

    Each output gets what its roles take (``loopcrawl.outputs``): without a
    spider, page records; with a ``spider``, its callbacks get the responses
    and its items go to the outputs and ``on_item`` (page records are still
    counted and passed to ``on_record``). Outputs taking responses (WARC) get
    every response, with or without a spider (``writer``, ``exporters``: older
    names). ``gate`` and ``robots`` share politeness and robots.txt (Redis)."""

    def __init__(
        self,
        settings: Settings,
        *,
        frontier: Frontier | None = None,
        outputs: Sequence[Output] = (),
        writer: Output | None = None,
        on_record: RecordHook | None = None,
        spider: Spider | None = None,
        exporters: Sequence[Output] = (),
        on_item: Callable[[Any], Any] | None = None,
        gate: HostGate | None = None,
        robots: SharedRobots | None = None,
    ) -> None:
        outs = [*outputs, *([writer] if writer is not None else []), *exporters]
        self._outputs = outs  # what the checkpoints cover
        self._records: list[Output] = []  # those taking page records (no spider)
        if spider is not None:
            settings = spider_settings(settings, spider)
        else:
            self._records = [o for o in outs if o.takes("records")]
        self._archives = [o for o in outs if o.takes("responses")]
        self._held: dict[int, Fetched] = {}  # lease token -> its response, until its ack
        self.settings = settings
        self.stats = CrawlStats(output=", ".join(o.path for o in outs) or None)
        self.frontier: Frontier = frontier if frontier is not None else MemoryFrontier(
            max_queued=settings.max_queued, skipped=self.stats.skipped)
        self._gate = gate  # per-host politeness shared with other crawlers (None: our own)
        self._shared_robots = robots  # robots.txt fetched once for every worker of a crawl
        self.on_record = on_record
        self._traps = TrapGuard(settings)
        self.stats.traps = self._traps.stops  # one counter, live
        parts = CrawlParts(settings, self.frontier, self.stats, self._traps)
        self._handler: PageHandler
        if spider is not None:
            self._handler = SpiderRun(parts, spider, [o for o in outs if o.takes("items")],
                                      on_item)
        else:
            self._handler = LinkFollower(parts)
        self._emits = self._handler.emits  # else emit() is not called: one call less a page
        self.scheduler: Scheduler | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._spawn: Callable[[], None] | None = None
        self._remote: RemoteFetch | None = None  # worker processes fetch (--workers N)
        self._stopping = False
        self._fatal: LoopcrawlError | None = None  # what stopped the crawl early
        self._auth: BasicAuth | None = None  # set by run()
        self._crawl_auth = settings.http_auth is not None  # else only spiders' Request.auth

    @property
    def scope(self) -> Scope:
        """Which URLs the crawl may fetch (links and redirect targets)."""
        return self._handler.scope

    async def run(self) -> CrawlStats:
        """Crawl until the frontier is exhausted, the page budget is spent, or
        ``stop()``; return the statistics."""
        s = self.settings
        sched = self.scheduler = Scheduler(
            self.frontier,
            concurrency=s.concurrency,
            per_host=s.per_host,
            delay=s.delay,
            max_pages=s.max_pages,
            spawn=self._spawn_worker,
            gate=self._gate,
        )
        if self._stopping:
            sched.stop()
        await self.frontier.add(await self._handler.open())
        self._auth = BasicAuth(s, self._handler.start_hosts)
        checkpoints = await self._start_checkpoints()
        try:
            async with self._open_fetcher() as fetcher:
                self._fetcher = fetcher
                # --state or Redis keep robots.txt; fetching it takes a turn of its host.
                store = self._shared_robots or (
                    self.frontier if isinstance(self.frontier, RobotsStore) else None)
                self._robots = RobotsCache(fetcher, s, store, turns=sched)
                if s.follow_sitemaps:
                    await seed_sitemaps(s.seeds, self._robots, self.frontier)
                # Every task of the crawl belongs to this group: the workers (started
                # as work arrives, see Scheduler.spawn) and the periodic checkpoints.
                # It ends when the dispatcher has sent each worker its None.
                async with asyncio.TaskGroup() as tg:
                    self._spawn = functools.partial(self._start_worker, tg)
                    saver: asyncio.Task[None] | None = None
                    if checkpoints is not None:
                        saver = tg.create_task(checkpoints(), name="loopcrawl-checkpoints")
                    try:
                        await sched.run()
                    finally:
                        self._spawn = None
                        if saver is not None:
                            saver.cancel()
                self.stats.robots_fetches = self._robots.fetches
                if isinstance(fetcher, ProcessFetcher):
                    self.stats.workers = dataclasses.asdict(fetcher.statistics())
        finally:
            for r in sched.unleased():
                await self.frontier.release(r)
            self.stats.finished = time.monotonic()
            self.stats.finished_at = time.time()
            self.stats.interrupted = self._stopping
            if checkpoints is not None and self._fatal is None:
                # The last checkpoint, after every worker has ended.
                assert isinstance(self.frontier, Checkpointing)
                await self.frontier.checkpoint(self._outputs)
            try:
                await self._handler.close(self._close_reason())
                for o in self._outputs:
                    o.flush()
            except OutputError as e:
                self._fail(e)
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _close_reason(self) -> str:
        """Why the crawl ended, in Scrapy's words (a spider's ``closed(reason)``)."""
        if self._fatal is not None:
            return "error"
        if self._stopping:
            return "shutdown"
        budget = self.settings.max_pages
        if budget is not None and self.stats.records >= budget:
            return "closespider_pagecount"
        return "finished"

    def _open_fetcher(self) -> Fetcher | ProcessFetcher:
        """The one-process ``Fetcher``, or worker processes behind the same
        ``fetch()`` (``--workers N``): the engine above is the same."""
        s = self.settings
        if s.workers > 1:
            self._remote = RemoteFetch(s, self._handler, bool(self._archives), self._traps)
            return self._remote.fetcher
        # Imported here: aiohttp's import is most of a process's start-up, and
        # the coordinator of worker processes fetches nothing itself.
        from ..net.fetcher import Fetcher

        return Fetcher(s)

    def _spawn_worker(self) -> None:
        """Start one more worker (the scheduler asks when work waits and every
        worker is busy): a crawl holds as many workers as it has requests in
        flight, not ``concurrency`` of them from the start."""
        if self._spawn is not None:
            self._spawn()

    def _start_worker(self, tg: asyncio.TaskGroup) -> None:
        self._workers.append(
            tg.create_task(self._worker(), name=f"loopcrawl-worker-{len(self._workers)}"))

    async def _start_checkpoints(self) -> Callable[[], Coroutine[Any, Any, None]] | None:
        """With a persistent frontier: checkpoint it with every output now
        (where each output starts); return what checkpoints it periodically."""
        frontier = self.frontier
        if not isinstance(frontier, Checkpointing):
            return None
        outputs = self._outputs
        stuck = [o.path for o in outputs if not o.resumable]
        if stuck:
            raise ConfigError(f"{', '.join(stuck)}: this output cannot be cut back to a "
                              "checkpoint, so a crawl with a persistent state cannot write it; "
                              f"formats that can: {', '.join(resumable_formats())}")
        await frontier.checkpoint(outputs)

        async def checkpoints() -> None:
            try:
                await frontier.run_checkpoints(outputs)
            except LoopcrawlError as e:  # disk full: stop at the last good checkpoint
                self._fail(e)

        return checkpoints

    def _fail(self, error: LoopcrawlError) -> None:
        """Stop the crawl because of ``error``; ``run()`` raises it at the end."""
        if self._fatal is None:
            self._fatal = error
        self.stop()

    def stop(self) -> None:
        """Stop fetching now: in-flight requests are abandoned (and released
        to the frontier, so a persistent crawl fetches them again)."""
        self._stopping = True
        if self.scheduler is not None:
            self.scheduler.stop()
        for t in self._workers:
            t.cancel()

    # -- one worker --------------------------------------------------------
    async def _worker(self) -> None:
        sched = self.scheduler
        assert sched is not None
        while (req := await sched.get()) is not None:
            counted, backoff = True, 0.0
            try:
                counted, backoff = await self._process(req)
            except asyncio.CancelledError:
                self._held.pop(req.lease, None)
                self._handler.drop(req)
                await self.frontier.release(req)
                raise
            except OutputError as e:  # disk full: no record can be written any more
                self._fail(e)
            except Exception as e:  # a bug must not hang or kill the crawl
                await self._finish(req, self._record(req, time.time(), 0.0,
                                                     error=errors.INTERNAL_ERROR, message=repr(e)))
            finally:
                sched.done(req, counted=counted, backoff=backoff)

    async def _process(self, req: Request) -> tuple[bool, float]:
        """Fetch one request and emit its record (or schedule a retry).

        Returns (counted toward --max-pages, host back-off in seconds).
        """
        s = self.settings
        sched = self.scheduler
        assert sched is not None
        started = time.time()
        t0 = time.perf_counter()
        trap = self._traps.at_fetch(req.url) if not req.retries else None
        if trap is not None:
            await self._finish(req, self._record(req, started, t0, error=errors.TRAP, message=trap))
            return False, 0.0
        if s.obey_robots:
            try:
                allowed = await self._robots.allowed(req.url)
            except RobotsUnavailable as e:
                if e.retry_in is not None and self._retry(req, str(e),
                                                          max(e.retry_in, s.retry_backoff)):
                    return True, 0.0
                await self._finish(req, self._record(req, started, t0,
                                                     error=e.kind, message=str(e)))
                return True, 0.0
            delay = self._robots.crawl_delay(host := host_of(req.url))
            if delay:
                sched.set_delay(host, delay)
            if not allowed:
                await self._finish(req, self._record(req, started, t0,
                                                     error=errors.ROBOTS_DENIED,
                                                     message="forbidden by robots.txt"))
                return False, 0.0
        if (wait := sched.started(req)) > 0:  # robots.txt or another request took its turn
            await sched.wait_turn(host_of(req.url), wait)
        headers: Mapping[str, str] | None = req.headers
        if req.auth is not None or self._crawl_auth:
            assert self._auth is not None
            headers = self._auth.headers(req)
        try:
            if self._remote is not None:
                f = await self._remote.fetch(req, headers, functools.partial(
                    self._check_redirect, req), self._hop_turn)
            else:
                f = await self._fetcher.fetch(
                    req.url, check_redirect=functools.partial(self._check_redirect, req),
                    method=req.method, headers=headers, body=req.body or None,
                    cookies=req.cookies, wait_turn=self._hop_turn)
        except WorkerLost:
            # Its worker process died: not the URL's fault, no attempt spent; back to its queue.
            sched.retry_later(req, 0.0)
            return True, 0.0
        except FetchError as e:
            if e.kind in errors.TRANSIENT and self._retry(req, e.kind):
                return True, 0.0
            await self._finish(req, self._record(req, started, t0, error=e.kind, message=str(e)))
            return True, 0.0
        if f.status in (429, 503):
            sched.throttled(host_of(req.url))
        elif f.status < 400:
            sched.gate.relax(host_of(req.url))  # a success: a throttled delay decays
        held = 0.0
        if f.status == 429 or f.status >= 500:
            backoff = f.retry_after if f.retry_after is not None else 0.0
            held = min(backoff, MAX_RETRY_AFTER)  # no retry left, or none waits that long
            if backoff > MAX_RETRY_AFTER:
                _log.info("%s answered %d with Retry-After: %.0f s, more than a retry waits: "
                          "no retry, and no request for %.1f s", host_of(req.url), f.status,
                          backoff, held)
            else:
                if backoff:
                    _log.info("%s answered %d with Retry-After: it gets no request for %.1f s",
                              host_of(req.url), f.status, backoff)
                if self._retry(req, f"HTTP {f.status}", backoff):
                    return True, backoff
        rec = self._record(req, started, t0, fetched=f)
        if self._archives:
            self._held[req.lease] = f  # archived at the ack, with the record
        await self._handler.page(req, f, rec)
        rec.elapsed_ms = (time.perf_counter() - t0) * 1000
        await self._finish(req, rec)
        return True, held

    async def _check_redirect(self, req: Request, target: str) -> Hop | ErrorKind:
        """Vet one redirect hop of ``req``; the claim on ``target`` is ``req``'s."""
        if not self._handler.scope.allows(target):
            return errors.REDIRECT_REFUSED
        if self.settings.obey_robots:
            try:
                if not await self._robots.allowed(target):
                    return errors.ROBOTS_DENIED
            except RobotsUnavailable as e:
                return e.kind
        if not await self.frontier.mark_seen(fingerprint(target), req):
            return Hop.STOP
        return Hop.FOLLOW

    async def _hop_turn(self, url: str) -> None:
        """A redirect hop to ``url`` waits for its host's turn like any request."""
        assert self.scheduler is not None
        await self.scheduler.wait_turn(host_of(url))

    def _retry(self, req: Request, why: str, backoff: float | None = None) -> bool:
        """Schedule another attempt if any are left (exponential back-off);
        ``why``: the failure, for the log."""
        s = self.settings
        if req.retries >= s.retries:
            return False
        req.retries += 1
        self.stats.retries += 1
        wait = s.retry_backoff * 2 ** (req.retries - 1)
        if backoff:
            wait = max(wait, backoff)
        assert self.scheduler is not None
        self.scheduler.retry_later(req, wait)
        _log.debug("retrying %s in %.1f s or a little more (attempt %d of %d): %s", req.url,
                   wait, req.retries + 1, s.retries + 1, why)
        return True

    def _record(
        self,
        req: Request,
        started: float,
        t0: float,
        *,
        fetched: Fetched | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> FetchRecord:
        rec = FetchRecord(
            url=req.url,
            depth=req.depth,
            referrer=req.referrer,
            fetched_at=started,
            elapsed_ms=(time.perf_counter() - t0) * 1000 if t0 else 0.0,
            error=error,
            message=message,
        )
        if fetched is not None:
            rec.final_url = fetched.url
            rec.status = fetched.status
            rec.content_type = fetched.content_type or None
            rec.bytes = len(fetched.body)
            rec.redirects = fetched.redirects
        return rec

    async def _finish(self, req: Request, rec: FetchRecord) -> None:
        if rec.error is not None:  # after its retries: the record says it, and so does the log
            _log.info("%s %s: %s", rec.error, rec.url, rec.message or rec.error)
        if rec.status is None and rec.error is not None:
            await self._handler.failed(req, rec)  # no response: timeout, robots.txt, ...
        # Everything a request produces is written here, with no await until its
        # ack: a checkpoint never holds a request's output without it being done.
        if self._archives and (f := self._held.pop(req.lease, None)) is not None:
            for a in self._archives:
                a.write_response(req, f)
        if self._emits:
            self._handler.emit(req)
        self.stats.record(rec)
        if self._records:
            d = rec.to_dict()
            for o in self._records:
                o.write_record(d)
        if self.on_record is not None:
            try:
                self.on_record(rec)
            except Exception:  # the caller's bug: logged, and the request stays one record
                _log.exception("on_record hook failed on %s", rec.url)
        await self.frontier.ack(req, rec)
