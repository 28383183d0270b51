"""``crawl`` and ``run``: the same options, one ``CrawlRun``, the result printed.

Both take every crawl setting as an option (generated from the Settings
fields: ``options.py``) and as ``-s KEY=VALUE``. One precedence holds for
both: the defaults < a spider's ``custom_settings`` < the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..core.runner import CrawlRun
from ..errors import ConfigError
from ..outputs import FORMATS, OutputSpec, format_of
from ..settings import Settings
from .common import explain, fail, notice, report, run_or_fail
from .options import given_settings, report_options, set_option, settings_options


def _run_options(what: str) -> Callable[[Any], Any]:
    """The options of ``crawl`` and ``run`` that are not settings: outputs,
    state, ``-s``, stats and report."""
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        options: list[Callable[[Any], Any]] = [
            click.option("-o", "--output", "outputs", multiple=True, metavar="FILE",
                         help=f"Write {what} to FILE, in the format its name ends in: .jsonl "
                         "(.jsonl.gz), .json, .csv, .db/.sqlite, .parquet, or .warc/.warc.gz "
                         "(every response); '-' is JSON lines on stdout. Adds to an existing "
                         "file. Repeatable."),
            click.option("-O", "--overwrite-output", "overwrites", multiple=True,
                         metavar="FILE", help="As -o, but replace the file if it exists."),
            click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
                         help="The format of every -o/-O, whatever its name."),
            click.option("--state", type=click.Path(dir_okay=False), metavar="FILE",
                         help="Keep the crawl in this SQLite file: stop or kill it at any "
                         "moment, run the same command again, and it resumes (every page's "
                         "output written once)."),
            click.option("--recrawl-failed", is_flag=True,
                         help="With --state: fetch the pages that failed again (and only "
                         "those); their new output is appended."),
            set_option,
        ]
        f = settings_options()(report_options(f))
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _specs(appends: Sequence[str], overwrites: Sequence[str], fmt: str | None
           ) -> list[OutputSpec]:
    return ([OutputSpec(p, format_of(p, fmt), "append") for p in appends]
            + [OutputSpec(p, format_of(p, fmt), "overwrite") for p in overwrites])


def _go(ctx: click.Context, settings: Settings, params: dict[str, Any], *,
        spider: Any = None, default_output: Sequence[str] = ()) -> None:
    """Build the CrawlRun from the parsed options, run it, print, exit."""
    from .logs import configure_logging
    from .progress import Progress

    try:
        values = given_settings(ctx, params, params.pop("overrides"))
        outputs, overwrites = params.pop("outputs"), params.pop("overwrites")
        specs = _specs(outputs or (() if overwrites else default_output), overwrites,
                       params.pop("fmt"))
        if spider is None:
            settings = settings.replace(output=specs[0].path if specs else None, **values)
            values = {}
        interval = params.pop("progress_interval")
        run = CrawlRun(settings, spider=spider, overrides=values, outputs=specs,
                       state=params.pop("state"), recrawl_failed=params.pop("recrawl_failed"),
                       stats_path=params.pop("stats_path"),
                       report_path=params.pop("report_path"), on_notice=notice)
        final = run.effective_settings()
        configure_logging(final.log_level, final.log_file, quiet=final.quiet)
    except ConfigError as e:
        fail(explain(e))
    quiet = final.quiet
    if not quiet:
        run.display = lambda c: Progress(c, interval=interval)
    result = run_or_fail(run)
    report(result, quiet=quiet)
    sys.exit(result.exit_code)


@click.command()
@click.argument("urls", nargs=-1, required=True)
@_run_options("a record per page")
@click.pass_context
def crawl(ctx: click.Context, urls: tuple[str, ...], **params: Any) -> None:
    """Crawl from the seed URLS, following links within the scope."""
    try:
        settings = Settings(seeds=urls)
    except ConfigError as e:
        fail(explain(e))
    _go(ctx, settings, params)


@click.command()
@click.argument("spider_file", type=click.Path(dir_okay=False))
@click.option("--spider", "spider_name", metavar="NAME",
              help="The spider to run, if the file defines several.")
@_run_options("items")
@click.pass_context
def run(ctx: click.Context, spider_file: str, spider_name: str | None, **params: Any) -> None:
    """Run the spider defined in SPIDER_FILE; its items go to -o (or stdout).

    Settings: the defaults, then the spider's custom_settings, then the
    command line's options and -s values."""
    from ..spider.base import load_spider

    try:
        cls = load_spider(spider_file, spider_name)
        try:
            spider = cls()
        except Exception as e:
            raise ConfigError(f"{spider_file}: {cls.__name__}() failed: "
                              f"{type(e).__name__}: {e}") from None
    except ConfigError as e:
        fail(explain(e))
    _go(ctx, Settings(), params, spider=spider, default_output=("-",))
