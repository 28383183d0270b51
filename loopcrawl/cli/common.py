"""What every command shares: one-line errors, notices, and a crawl's result
printed (the summary, the whole crawl's totals, why nothing was crawled)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from ..core.runner import EXIT_ERROR, EXIT_USAGE, CrawlResult, Outcome
from ..errors import ConfigError, LoopcrawlError
from ..settings import setting_field

if TYPE_CHECKING:
    from ..core.runner import CrawlRun


def explain(error: ConfigError) -> str:
    """A settings error naming the value as the command line's user typed it
    (``--per-host must be at least 1, not 0``), not by its field's name."""
    f = setting_field(error.field) if error.field else None
    return error.named(f.option) if f is not None and f.option else str(error)


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit code 2: never a traceback for bad input."""
    click.echo(f"loopcrawl: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def notice(level: int, message: str) -> None:
    """A runner's notice on stderr: ``loopcrawl: warning: ...`` or ``loopcrawl: ...``."""
    tag = "warning: " if level >= logging.WARNING else ""
    click.echo(f"loopcrawl: {tag}{message}", err=True)


def run_or_fail(run: CrawlRun) -> CrawlResult:
    """``run.run()``; its errors as one line: exit 2 for bad input (before the
    crawl began, or a setting), exit 1 for a crawl stopped by an error (a full
    disk, say), with how to resume it under ``--state``."""
    try:
        return run.run()
    except LoopcrawlError as e:
        if isinstance(e, ConfigError):
            fail(explain(e))
        if not run.started:
            fail(str(e))
        hint = (f"; {run.state} holds the last checkpoint: fix this, then run the same "
                "command to resume") if run.state else ""
        click.echo(f"loopcrawl: error: {e}{hint}", err=True)
        sys.exit(EXIT_ERROR)


def report(result: CrawlResult, *, quiet: bool) -> None:
    """Print what a run did (nothing with ``quiet`` but why it did nothing)."""
    from .progress import print_summary, summary_row

    totals = result.totals
    if result.outcome is Outcome.COMPLETE and totals is not None:
        click.echo(f"loopcrawl: the crawl in {result.state} is complete ({totals.done:,} done, "
                   f"{totals.failed:,} failed); nothing to do", err=True)
        return
    if result.outcome is Outcome.BUDGET_SPENT:
        return  # the runner said so as it opened the state
    if not quiet:
        print_summary(result.stats)
        if totals is not None and totals.resumed:
            summary_row("whole crawl", f"{totals.done + totals.failed:,} requests "
                        f"({totals.done:,} done, {totals.failed:,} failed), "
                        f"{totals.queued:,} queued")
        if result.state is not None and result.signal is not None:
            click.echo(f"loopcrawl: the crawl is saved in {result.state}: run the same "
                       "command to resume it", err=True)
    if result.outcome is Outcome.NOTHING_CRAWLED:
        why = ("no request was made (no seed, or a spider without start requests)"
               if result.stats.records == 0 else
               "every request failed (see the errors in the output)")
        click.echo(f"loopcrawl: nothing was crawled: {why}", err=True)
