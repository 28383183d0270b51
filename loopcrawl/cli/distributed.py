"""The crawl shared through Redis: ``seed``, ``worker``, and ``status --redis``.

One crawl, named, lives in one Redis (``frontier/redis``): its settings, its
queue and seen set, its leases and its politeness state. ``seed`` creates it
(or adds URLs to it); any number of ``worker`` processes, on any machines,
run the ordinary crawl (``CrawlRun``) on its frontier and host gate, and end
by themselves when nothing is queued or leased anywhere; ``status`` reads it.
docs/distributed.md is the user's guide.

Which settings belong where: the crawl's (scope, depth, budgets, politeness,
robots, timeouts, what is sent) are given to ``seed`` and stored with the
crawl, so every worker crawls alike; a worker takes only what is its own
machine's business (``WORKER_SETTINGS``: concurrency, processes, logging).
Nothing here is imported by a crawl that does not use Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..core.runner import EXIT_ERROR, EXIT_OK, Outcome
from ..errors import ConfigError, LoopcrawlError
from ..settings import Settings, settings_fields
from .common import explain, fail, notice, report
from .options import given_settings, report_options, set_option, settings_options

if TYPE_CHECKING:
    from ..core.runner import CrawlResult, CrawlRun
    from ..frontier.redis import RedisCrawl
    from ..frontier.redis.status import CrawlStatus

__all__ = ["CRAWL_SETTINGS", "WORKER_SETTINGS", "seed", "show_redis_status", "status_json",
           "worker"]

T = TypeVar("T")

# A worker's own settings: how hard this machine works and where it logs.
WORKER_SETTINGS = ("concurrency", "workers", "log_level", "log_file", "quiet")
_WATCH_EVERY = 2.0  # seconds between two checks that the crawl is still in Redis
# The crawl's settings, given to ``seed`` and stored with the crawl.
CRAWL_SETTINGS = tuple(f.name for f in settings_fields()
                       if f.option is not None and f.name not in WORKER_SETTINGS)


def _redis_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--redis URL --crawl NAME``: which crawl, in which Redis."""
    f = click.option("--crawl", "name", required=True, metavar="NAME",
                     help="The crawl's name: its keys in Redis begin lc:{NAME}:.")(f)
    return click.option("--redis", "url", required=True, metavar="URL",
                        help="The Redis holding the crawl: redis://[:password@]HOST[:PORT]"
                        "[/DB] (rediss:// for TLS, unix:///path.sock).")(f)


async def _open(url: str, name: str, *, must_exist: bool = True) -> RedisCrawl:
    """Connect to the crawl (``ConfigError``: a bad URL, Redis unreachable, no such crawl)."""
    from ..frontier.redis import RedisCrawl

    crawl = await RedisCrawl.connect(url, name)
    if must_exist and not await crawl.exists():
        await crawl.close()
        raise ConfigError(f"there is no crawl {name!r} in {_safe(url)}: create it with "
                          f"loopcrawl seed --redis URL --crawl {name} URL...")
    return crawl


def _safe(url: str) -> str:
    """The Redis URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}***@{tail}"


def _answer(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` on a new event loop; its bad input as one line, exit 2."""
    from ..core.runtime import new_event_loop

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(work())
    except ConfigError as e:
        fail(explain(e))
    except LoopcrawlError as e:
        fail(str(e))


# -- seed --------------------------------------------------------------------------

def _differing(stored: Settings, given: Mapping[str, Any]) -> list[str]:
    """The options given that say otherwise than the stored crawl's settings."""
    fields = {f.name: f for f in settings_fields()}
    return [f"{fields[k].option} {getattr(stored, k)!r} (not {v!r})"
            for k, v in given.items() if getattr(stored, k) != v]


@click.command()
@click.argument("urls", nargs=-1, required=True)
@_redis_options
@click.option("--expected-urls", type=click.IntRange(1, 10**12), default=1_000_000,
              show_default=True, metavar="N",
              help="About how many URLs the crawl will see: sizes its seen set when it is "
              "created (~9 bytes a URL up to about twice N, then ~60). Ignored when adding "
              "to a crawl.")
@set_option
@settings_options(CRAWL_SETTINGS)
@click.pass_context
def seed(ctx: click.Context, urls: tuple[str, ...], url: str, name: str, expected_urls: int,
         overrides: tuple[str, ...], **params: Any) -> None:
    """Create the crawl NAME in Redis with the seed URLS and the crawl's
    settings (the options below), or add URLS to the crawl NAME if it exists.

    Every worker crawls with the settings stored here. Seeding a crawl that
    exists keeps its settings: an option that says otherwise is refused."""
    try:
        given = given_settings(ctx, params, overrides)
        local = sorted(k for k in given if k in WORKER_SETTINGS)
        if local:
            raise ConfigError(f"{', '.join(local)}: a worker's own setting; give it to "
                              "loopcrawl worker")
        settings = Settings(seeds=urls, **given)
    except ConfigError as e:
        fail(explain(e))

    async def work() -> tuple[int, bool]:
        crawl = await _open(url, name, must_exist=False)
        try:
            existed = await crawl.exists()
            if existed and given:
                differ = _differing(await crawl.settings(), given)
                if differ:
                    raise ConfigError(
                        f"the crawl {name!r} exists with other settings: {'; '.join(differ)}. "
                        "Seed it without them to add URLs, or name a new crawl")
            return (await crawl.create_or_add(settings, urls, expected_urls=expected_urls),
                    existed)
        finally:
            await crawl.close()

    added, existed = _answer(work)
    new = f"{added:,} new URL{'' if added == 1 else 's'}"
    said = (f"{new} added to crawl {name!r}" if existed
            else f"crawl {name!r} created with {new}")
    click.echo(f"loopcrawl: {said} ({len(urls) - added:,} seen already)", err=True)


# -- worker ------------------------------------------------------------------------

def worker_id() -> str:
    """This worker's name in ``status``: the machine and the process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@click.command()
@_redis_options
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE",
              help="Write this worker's records (with a spider, its items) to FILE, in the "
              "format its name ends in (as crawl -o); '-' is JSON lines on stdout. Each "
              "worker writes its own file. Repeatable.")
@click.option("-O", "--overwrite-output", "overwrites", multiple=True, metavar="FILE",
              help="As -o, but replace the file if it exists.")
@click.option("--spider", "spider_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Run the spider defined in FILE (the same file on every worker).")
@click.option("--spider-name", metavar="NAME",
              help="The spider to run, if the file defines several.")
@click.option("--lease-ttl", type=click.FloatRange(0.5, 86_400), default=None, metavar="SECONDS",
              help="How long a URL this worker leased stays its own without a heartbeat: "
              "if the worker dies, the URLs it held are queued again after this long "
              "(default: the frontier's).")
@click.option("--forever", is_flag=True,
              help="Do not exit when the crawl is done: wait for more URLs (seed adds "
              "them) until stopped.")
@set_option
@settings_options(WORKER_SETTINGS)
@report_options
@click.pass_context
def worker(ctx: click.Context, url: str, name: str, outputs: tuple[str, ...],
           overwrites: tuple[str, ...], spider_file: str | None, spider_name: str | None,
           lease_ttl: float | None, forever: bool, overrides: tuple[str, ...],
           **params: Any) -> None:
    """Work on the crawl NAME: lease its URLs from Redis, fetch them, queue
    the links found; exit with a summary when the crawl is done (nothing
    queued, nothing leased by any worker), unless --forever.

    Start as many as you like, on any machines; they share one crawl (one
    seen set, one politeness per host). Ctrl-C or SIGTERM stops one
    gracefully: what it held goes back to the queue."""
    from ..outputs import OutputSpec, format_of

    try:
        local = given_settings(ctx, params, overrides)
        stray = sorted(k for k in local if k not in WORKER_SETTINGS)
        if stray:
            raise ConfigError(f"{', '.join(stray)}: the crawl's setting, stored when it was "
                              "seeded (loopcrawl seed); a worker takes only "
                              + ", ".join(WORKER_SETTINGS))
        specs = ([OutputSpec(p, format_of(p, None), "append") for p in outputs]
                 + [OutputSpec(p, format_of(p, None), "overwrite") for p in overwrites])
        for spec in specs:
            if spec.format == "parquet":
                # Its rows are readable only once the file is closed (the footer
                # is written last): a killed worker would lose pages already acked.
                raise ConfigError(
                    f"{spec.path}: a worker cannot write Parquet: a worker killed before it "
                    "closes the file loses every row, and those pages are not fetched "
                    "again; write JSONL or SQLite (-o pages.jsonl, -o pages.sqlite) and "
                    "convert it afterwards")
        spider = _spider(spider_file, spider_name) if spider_file else None
    except ConfigError as e:
        fail(explain(e))
    interval = params.pop("progress_interval")
    result = _answer(lambda: _work(url, name, local, specs, spider, lease_ttl, forever,
                                   interval, params.pop("stats_path"),
                                   params.pop("report_path")))
    if result.outcome is not Outcome.COMPLETE:  # else: said by _work
        report(result, quiet=bool(local.get("quiet")))
    sys.exit(result.exit_code)


def _spider(path: str, name: str | None) -> Any:
    from ..spider.base import load_spider

    cls = load_spider(path, name)
    try:
        return cls()
    except Exception as e:
        raise ConfigError(f"{path}: {cls.__name__}() failed: {type(e).__name__}: {e}") from None


async def _work(url: str, name: str, local: dict[str, Any], specs: list[Any], spider: Any,
                lease_ttl: float | None, forever: bool, interval: float, stats_path: str | None,
                report_path: str | None) -> CrawlResult:
    """Run this worker's part of the crawl on the running loop."""
    from ..core.runner import CrawlRun
    from ..frontier.redis import DEFAULT_LEASE_TTL
    from .logs import configure_logging
    from .progress import Progress

    ttl = lease_ttl or DEFAULT_LEASE_TTL
    me = worker_id()
    crawl = await _open(url, name)
    try:
        stored = await crawl.settings()
        settings = stored.replace(output=specs[0].path if specs else None)
        frontier = crawl.frontier(me, lease_ttl=ttl)
        run = CrawlRun(settings, spider=spider, overrides=local, outputs=specs,
                       stats_path=stats_path, report_path=report_path, on_notice=notice,
                       frontier=_Forever(frontier) if forever else frontier,
                       robots=crawl.robots_store(me))
        final = run.effective_settings()  # the crawl's, a spider's, this worker's
        configure_logging(final.log_level, final.log_file, quiet=final.quiet)
        if not final.quiet:
            run.display = lambda c: Progress(c, interval=interval)
        gate = run.gate = crawl.gate(me, final, ttl=ttl)
        watch = asyncio.create_task(_watch(crawl, run), name="loopcrawl-crawl-watch")
        try:
            result = await _run(run)
        finally:
            watch.cancel()
            await gate.close()
            await frontier.close()
        if (watch.done() and not watch.cancelled() and watch.exception() is None
                and watch.result()):
            click.echo(f"loopcrawl: error: the crawl {name!r} is no longer in Redis (a restart "
                       "without persistence, or deleted); this worker stopped", err=True)
            sys.exit(EXIT_ERROR)
        if result.stats.records == 0 and result.signal is None:
            # Nothing was left for this worker: the crawl is done (or was when it came).
            notice(logging.INFO, f"the crawl {name!r} is done: nothing left to fetch")
            return dataclasses.replace(result, outcome=Outcome.COMPLETE, exit_code=EXIT_OK)
        if result.outcome is Outcome.NOTHING_CRAWLED and (await crawl.status()).done:
            # Every page this worker had failed, but others' did not: exit 3 is
            # for a crawl that crawled nothing, not for a worker's share of one.
            return dataclasses.replace(result, outcome=Outcome.FINISHED, exit_code=EXIT_OK)
        return result
    finally:
        await crawl.close()


async def _watch(crawl: RedisCrawl, run: CrawlRun) -> bool:
    """Stop the worker if its crawl leaves Redis (True then): a Redis restarted
    without persistence comes back empty, and the links found next would
    start a crawl of their own with no settings and no memory of what was
    done. Asked every ``_WATCH_EVERY`` seconds; a Redis that is down is
    waited for (``RedisCrawl`` reconnects)."""
    while True:
        await asyncio.sleep(_WATCH_EVERY)
        if not await crawl.exists():
            run.stop()
            return True


async def _run(run: CrawlRun) -> CrawlResult:
    """``run.run_async()``, its errors as ``common.run_or_fail`` says them."""
    try:
        return await run.run_async()
    except LoopcrawlError as e:
        if isinstance(e, ConfigError) or not run.started:
            raise
        click.echo(f"loopcrawl: error: {e}", err=True)
        sys.exit(EXIT_ERROR)


class _Forever:
    """A frontier that is never finished (``worker --forever``): the worker
    waits for more URLs instead of exiting. The rest is the frontier's own."""

    def __init__(self, frontier: Any) -> None:
        self._frontier = frontier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._frontier, name)

    async def is_finished(self) -> bool:
        return False


# -- status ------------------------------------------------------------------------

def show_redis_status(url: str, name: str, as_json: bool) -> None:
    """``status --redis URL --crawl NAME``: print the crawl's status."""

    async def work() -> CrawlStatus:
        crawl = await _open(url, name)
        try:
            return await crawl.status()
        finally:
            await crawl.close()

    st = _answer(work)
    if as_json:
        click.echo(json.dumps(status_json(st), indent=2))
        return
    rows = [
        ("crawl", f"{name}  ({'finished' if st.finished else 'running'}; created "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.created))} UTC)"),
        ("queued", f"{st.queued:,}"),
        ("leased", f"{st.leased:,}"),
        ("done", f"{st.done:,}"),
        ("failed", f"{st.failed:,}"),
        ("seen", f"{st.seen:,}"),
        ("pages", f"{st.pages:,}" + (f" of --max-pages {st.max_pages:,}"
                                     if st.max_pages is not None else "")),
        ("pages/s", f"{st.pages_per_s:,.1f} (last minute)"),
        ("workers", f"{sum(w.alive for w in st.workers)} live"),
    ]
    for label, value in rows:
        click.echo(f"{label:>10}  {value}")
    for w in st.workers:
        state = "" if w.alive else ", gone"
        click.echo(f"{'':>10}  {w.id}  (last heartbeat {w.age:,.1f} s ago{state})")
    if st.top_hosts:
        width = max(len(h) for h, _ in st.top_hosts)
        click.echo(f"{'top hosts':>10}  {'':{width}}  {'pages':>10}")
        for host, n in st.top_hosts:
            click.echo(f"{'':>10}  {host:{width}}  {n:>10,}")


def status_json(st: CrawlStatus) -> dict[str, Any]:
    """The status as ``status --json`` prints it (workers and hosts as objects)."""
    d = dataclasses.asdict(st)
    d["finished"] = st.finished
    d["pages_per_s"] = round(st.pages_per_s, 2)
    d["top_hosts"] = [{"host": h, "pages": n} for h, n in st.top_hosts]
    return d
