"""The crawl runner: everything around one ``Crawler`` run, as a library.

``crawl``, ``run``, ``demo``, tests and (later) workers call this; the command
line only parses options, calls it and prints what it returns::

    from loopcrawl import CrawlRun, Settings

    result = CrawlRun(Settings(seeds=("https://example.com/",)),
                      outputs=["pages.jsonl"], state="crawl.db").run()
    result.exit_code, result.outcome, result.stats.records

One run: check the outputs can be written, open the frontier (in memory, or
the SQLite state file with ``state=``: resumed, bound to its outputs, the
page budget that is left, settings that changed, ``recrawl_failed``), open
the outputs cut back to the last checkpoint, run the crawl (with a display
and SIGINT/SIGTERM handling if asked), and close everything whatever
happens. Precedence of settings: ``settings`` (the project's) < a spider's
``custom_settings`` < ``overrides`` (the command line), as in Scrapy.

Nothing here prints or exits: notices go to ``on_notice`` (logging by
default), the outcome and the exit code to use come back in a
``CrawlResult``, and errors are raised as ``LoopcrawlError``s (``started``
tells whether the crawl had begun: before that, they are bad input).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError
from ..outputs import Mode, Outputs, OutputSpec, check_path, open_outputs, parse_outputs
from ..settings import Settings
from .engine import Crawler, new_event_loop, tune_malloc
from .runtime import tune_gc
from .stats import CrawlStats

if TYPE_CHECKING:
    from ..frontier import Frontier
    from ..frontier.sqlite import SqliteFrontier
    from ..net.robots import SharedRobots
    from ..spider.base import Spider
    from .hostgate import HostGate

__all__ = ["EXIT_ERROR", "EXIT_NOTHING", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM",
           "EXIT_USAGE", "CrawlResult", "CrawlRun", "Display", "Outcome", "StateTotals", "crawl"]

_log = logging.getLogger("loopcrawl")

# Exit codes of the command line (README, "Exit codes").
EXIT_OK = 0  # the crawl ran, even if some pages failed
EXIT_ERROR = 1  # the crawl was stopped by an error (a full disk, say)
EXIT_USAGE = 2  # bad input: an option, a seed, an output path, a state file
EXIT_NOTHING = 3  # nothing could be crawled: every request failed, or none was made
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

Notice = Callable[[int, str], Any]  # (logging level, message)


class Outcome(enum.StrEnum):
    """Why a run ended."""

    FINISHED = "finished"  # nothing left to fetch, or --max-pages reached
    INTERRUPTED = "interrupted"  # stop(), SIGINT or SIGTERM
    NOTHING_CRAWLED = "nothing_crawled"  # no request succeeded, or none was made
    COMPLETE = "complete"  # a --state crawl finished before: nothing was left to do
    BUDGET_SPENT = "budget_spent"  # a --state crawl had used its --max-pages already


class Display(Protocol):
    """What shows a crawl while it runs (``cli.progress.Progress``)."""

    def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StateTotals:
    """A ``--state`` crawl over every run so far, as of its last checkpoint."""

    done: int  # requests that ended (a page, or a refusal by policy)
    failed: int  # requests that failed (fetched again by recrawl_failed)
    queued: int
    seen: int
    resumed: bool  # an earlier run had done work


@dataclass(frozen=True, slots=True)
class CrawlResult:
    """What a run did: ``stats`` of this run, ``totals`` of the whole crawl
    (``state=`` only), the ``outcome`` and the process ``exit_code`` for it."""

    stats: CrawlStats
    outcome: Outcome
    exit_code: int
    signal: int | None = None  # the signal that stopped the crawl
    totals: StateTotals | None = None
    state: str | None = None


def _capped(s: Settings) -> Settings:
    if s.connect_timeout <= s.timeout and s.read_timeout <= s.timeout:
        return s
    return s.replace(connect_timeout=min(s.connect_timeout, s.timeout),
                     read_timeout=min(s.read_timeout, s.timeout))


def _log_notice(level: int, message: str) -> None:
    _log.log(level, "%s", message)


class CrawlRun:
    """One run of a crawl: ``CrawlRun(settings, ...).run()`` returns a ``CrawlResult``.

    ``outputs``: files to write ('-' is standard output), or ``OutputSpec``s,
    in the format each name ends in (``fmt`` forces one; docs/output.md):
    the page records, or with a spider its items; WARC files every response.
    ``mode``: what to do with a file that exists, ``append`` (``-o``) or
    ``overwrite`` (``-O``), unless its spec says. ``stats_path`` and
    ``report_path``: where the stats JSON and the HTML report go at the end.
    ``state``: a SQLite file that keeps the crawl, to resume it after any
    stop (``recrawl_failed``: fetch its failed pages again). ``overrides``:
    settings over the spider's ``custom_settings`` (the command line's).
    ``display(crawler)`` is started with the crawl and closed after it.
    ``signals``: on the main thread, the first SIGINT/SIGTERM stops the crawl
    gracefully (its records flushed, the state checkpointed), the second
    exits the process at once. ``on_record``/``on_item`` go to ``Crawler``.
    ``frontier``, ``gate`` and ``robots``: a shared crawl's (``loopcrawl
    worker``: Redis), opened and closed by the caller, instead of the run's
    own; its outputs are then ``SharedCrawlOutput``s (page records carry
    their fingerprint, every write reaches the OS before its ack: flushed
    before each batch of acks, ``before_acks``, if the frontier has it).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        outputs: Sequence[str | os.PathLike[str] | OutputSpec] = (),
        spider: Spider | None = None,
        fmt: str | None = None,
        mode: Mode = "append",
        stats_path: str | None = None,
        report_path: str | None = None,
        state: str | os.PathLike[str] | None = None,
        recrawl_failed: bool = False,
        overrides: Mapping[str, Any] | None = None,
        signals: bool = True,
        display: Callable[[Crawler], Display] | None = None,
        on_notice: Notice = _log_notice,
        on_record: Callable[[Any], Any] | None = None,
        on_item: Callable[[Any], Any] | None = None,
        frontier: Frontier | None = None,
        gate: HostGate | None = None,
        robots: SharedRobots | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.outputs = [o if isinstance(o, OutputSpec) else os.fspath(o) for o in outputs]
        self.spider = spider
        self.fmt = fmt
        self.mode: Mode = mode
        self.stats_path = stats_path
        self.report_path = report_path
        self.state = os.fspath(state) if state is not None else None
        self.recrawl_failed = recrawl_failed
        self.overrides = dict(overrides or {})
        self.signals = signals
        self.display = display
        self.notice = on_notice
        self.on_record = on_record
        self.on_item = on_item
        self.frontier = frontier
        self.gate = gate
        self.robots = robots
        self.crawler: Crawler | None = None
        self.started = False  # the crawl began: errors from here on are not bad input
        self._signal: int | None = None

    # -- settings ------------------------------------------------------------
    def effective_settings(self) -> Settings:
        """The settings the crawl runs with (ConfigError if they cannot work).

        The connect and read timeouts are capped by the whole request's
        (``--timeout 5`` alone means at most 5 s to connect too)."""
        if self.spider is None:
            s = self.settings.replace(**self.overrides) if self.overrides else self.settings
            self.settings, self.overrides = _capped(s), {}
            return self.settings
        from ..spider.run import spider_settings

        if self.overrides:  # over custom_settings, and seen by spider_scope as its own
            self.spider.custom_settings = {**self.spider.custom_settings, **self.overrides}
            self.overrides = {}
        s = spider_settings(self.settings, self.spider)
        capped = _capped(s)
        if capped is not s:
            self.spider.custom_settings = {**self.spider.custom_settings,
                                           "connect_timeout": capped.connect_timeout,
                                           "read_timeout": capped.read_timeout}
        return capped

    # -- running ---------------------------------------------------------------
    def run(self) -> CrawlResult:
        """Run the crawl to its end on a new event loop (uvloop when present)."""
        tune_malloc()
        tune_gc()
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(self.run_async())

    def stop(self) -> None:
        """Stop gracefully: in-flight requests are abandoned (fetched again on
        resume), records and the state are flushed, ``run`` returns."""
        if self.crawler is not None:
            self.crawler.stop()

    async def run_async(self) -> CrawlResult:
        """``run`` on the running event loop."""
        if self.recrawl_failed and self.state is None:
            raise ConfigError("--recrawl-failed needs --state FILE (the crawl whose failed "
                              "pages to fetch again)")
        if self.state is not None and self.frontier is not None:
            raise ConfigError("--state keeps a crawl of one process; a shared crawl's "
                              "frontier (Redis) keeps itself")
        settings = self.effective_settings()
        specs = parse_outputs(self.outputs, self.fmt, resumable=self.state is not None)
        for path in (self.stats_path, self.report_path):
            if path:
                check_path(path)
        stats: CrawlStats | None = None
        try:
            with contextlib.ExitStack() as stack:
                frontier: Frontier | None = self.frontier
                marks: list[Any] | None = None
                before = 0
                budget: Settings | None = settings
                if self.state is not None:
                    frontier, marks, budget, before = await self._open_state(stack, settings, specs)
                if budget is not None:
                    crawler = self._crawler(stack, budget, frontier, specs, marks)
                    stats = await self._crawl(crawler)
        finally:
            if self.crawler is not None:
                self._write_stats(self.crawler.stats)
        totals = self._totals(before) if self.state is not None else None
        if stats is None:
            return self._result(CrawlStats(), Outcome.BUDGET_SPENT, totals)
        return self._result(stats, self._outcome(stats, totals), totals)

    async def _open_state(self, stack: contextlib.ExitStack, settings: Settings,
                    specs: list[OutputSpec]
                    ) -> tuple[SqliteFrontier, list[Any], Settings | None, int]:
        """Open the state file (closed by ``stack``): the frontier, each output's
        mark, the settings with the page budget that is left (None: spent),
        and how many requests earlier runs had ended."""
        from ..frontier.sqlite import SqliteFrontier

        assert self.state is not None
        frontier = stack.enter_context(SqliteFrontier(self.state))
        marks = frontier.bind_outputs([s.path for s in specs])
        for name in frontier.note_settings(settings):
            self.notice(logging.WARNING, f"--{name.replace('_', '-')} differs from the earlier "
                        f"run of the crawl in {self.state}; going on with the new value")
        before = (await frontier.statistics()).done
        if self.recrawl_failed:
            n = frontier.requeue_failed()
            self.notice(logging.INFO, f"{n:,} failed pages queued again")
        if settings.max_pages is not None:  # the budget covers every run of the crawl
            left = settings.max_pages - frontier.pages_done
            if left <= 0:
                self.notice(logging.INFO, f"the crawl in {self.state} has used its --max-pages "
                            f"budget ({frontier.pages_done:,} pages); nothing to do")
                return frontier, marks, None, before
            settings = settings.replace(max_pages=left)
            if self.spider is not None:  # what is left of it, over custom_settings
                self.spider.custom_settings = {**self.spider.custom_settings, "max_pages": left}
        return frontier, marks, settings, before

    def _crawler(self, stack: contextlib.ExitStack, settings: Settings,
                 frontier: Frontier | None, specs: list[OutputSpec],
                 marks: list[Any] | None) -> Crawler:
        """The outputs (closed by ``stack``) and the Crawler writing to them."""
        opened = open_outputs(specs, mode=self.mode, resume_marks=marks,
                              role="records" if self.spider is None else "items")
        stack.callback(opened.close)
        kwargs: dict[str, Any] = {}
        if self.spider is not None:
            # The spider's settings are applied by the Crawler, from the base.
            kwargs.update(spider=self.spider, on_item=self.on_item)
            settings = self.settings
        if self.frontier is not None:
            from ..outputs.shared import SharedCrawlOutput

            # Outputs flushed before each batch of acks leaves, where the
            # frontier can say when; else at every write.
            hook = getattr(frontier, "before_acks", None)
            opened = Outputs([SharedCrawlOutput(o, flush_each=hook is None) for o in opened])
            if hook is not None:
                hook(opened.flush)
            kwargs.update(gate=self.gate, robots=self.robots)
        crawler = self.crawler = Crawler(settings, frontier=frontier, outputs=opened,
                                         on_record=self.on_record, **kwargs)
        return crawler

    def _write_stats(self, stats: CrawlStats) -> None:
        """The stats JSON and the HTML report, if asked; a file that cannot be
        written is a warning, not a lost crawl."""
        if not self.stats_path and not self.report_path:
            return
        from ..errors import OutputError
        from ..report import write_stats

        try:
            write_stats(stats, stats_path=self.stats_path, report_path=self.report_path)
        except OutputError as e:
            self.notice(logging.WARNING, str(e))

    async def _crawl(self, crawler: Crawler) -> CrawlStats:
        """Run ``crawler`` with the display and the signal handlers."""
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        if self.signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self._on_signal, signum)
                handled.append(signum)
        shown = self.display(crawler) if self.display is not None else None
        self.started = True
        try:
            if shown is not None:
                shown.start()
            try:
                return await crawler.run()
            finally:
                if shown is not None:
                    await shown.close()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        if self._signal is not None:  # the second one: leave at once
            os._exit(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)
        self._signal = signum
        self.notice(logging.WARNING, "stopping (press Ctrl-C again to quit at once)")
        self.stop()

    # -- the result ------------------------------------------------------------
    def _totals(self, before: int) -> StateTotals | None:
        from ..errors import StateError
        from ..frontier.sqlite import read_status

        assert self.state is not None
        try:
            st = read_status(self.state)
        except StateError:  # never checkpointed (stopped at once): nothing to add
            return None
        return StateTotals(done=st.done, failed=st.failed, queued=st.queued, seen=st.seen,
                           resumed=before > 0)

    def _outcome(self, stats: CrawlStats, totals: StateTotals | None) -> Outcome:
        if stats.interrupted:
            return Outcome.INTERRUPTED
        if totals is not None and totals.resumed:
            return Outcome.COMPLETE if stats.records == 0 else Outcome.FINISHED
        return Outcome.NOTHING_CRAWLED if stats.ok == 0 else Outcome.FINISHED

    def _result(self, stats: CrawlStats, outcome: Outcome,
                totals: StateTotals | None = None) -> CrawlResult:
        if self._signal is not None:
            code = EXIT_SIGINT if self._signal == signal.SIGINT else EXIT_SIGTERM
        elif outcome is Outcome.NOTHING_CRAWLED:
            code = EXIT_NOTHING
        else:  # stop() from code too: the crawl ran
            code = EXIT_OK
        return CrawlResult(stats=stats, outcome=outcome, exit_code=code, signal=self._signal,
                           totals=totals, state=self.state)


def crawl(settings: Settings | None = None, **kwargs: Any) -> CrawlStats:
    """Run a crawl to the end on a new event loop (uvloop when present).

    ``kwargs`` go to ``Crawler``: ``crawl(spider=Shop(), on_item=items.append)``.
    It also tunes malloc for the process (``tune_malloc``).
    """
    tune_malloc()
    tune_gc()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(Crawler(settings or Settings(), **kwargs).run())
