"""The command line. Thin: it builds settings and calls the library."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..core.engine import Crawler, new_event_loop, tune_malloc
from ..errors import ConfigError, LoopcrawlError, OutputError, StateError
from ..outputs import (
    FORMATS,
    OutputSpec,
    Role,
    check_path,
    format_of,
    open_outputs,
    parse_outputs,
)
from ..settings import DEFAULT_USER_AGENT, Settings, setting_field
from .setting_type import SettingValue

if TYPE_CHECKING:
    from ..core.stats import CrawlStats
    from ..frontier.sqlite import SqliteFrontier

EXIT_USAGE = 2
_DEFAULTS = Settings()
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def explain(error: ConfigError) -> str:
    """A settings error naming the value as the command line's user typed it
    (``--per-host must be at least 1, not 0``), not by its field's name."""
    f = setting_field(error.field) if error.field else None
    return error.named(f.option) if f is not None and f.option else str(error)


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit code 2: never a traceback for bad input."""
    click.echo(f"loopcrawl: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loopcrawl")
def main() -> None:
    """loopcrawl: a fast, polite web crawler on the asyncio event loop."""


def open_state(
    path: str,
    outputs: Sequence[str],
    settings: Settings,
    *,
    recrawl_failed: bool,
) -> tuple[SqliteFrontier, list[Any], Settings]:
    """Open (or resume) the crawl kept in the state file ``path``: the frontier,
    where to cut each output back to (its mark at the last checkpoint, None
    for a fresh one), and the settings for this run. Any problem with the
    state is one line and exit 2."""
    from ..frontier.sqlite import SqliteFrontier

    if "-" in outputs:
        fail("--state needs -o FILE: standard output cannot be rewound when a crawl resumes")
    try:
        frontier = SqliteFrontier(path)
    except StateError as e:
        fail(str(e))
    try:
        marks = frontier.bind_outputs(outputs)
        for name in frontier.note_settings(settings):
            click.echo(f"loopcrawl: warning: --{name.replace('_', '-')} differs from the "
                       f"earlier run of the crawl in {path}; going on with the new value",
                       err=True)
        if recrawl_failed:
            n = frontier.requeue_failed()
            click.echo(f"loopcrawl: {n:,} failed pages queued again", err=True)
        if settings.max_pages is not None:  # the budget covers every run of the crawl
            left = settings.max_pages - frontier.pages_done
            if left <= 0:
                click.echo(f"loopcrawl: the crawl in {path} has used its --max-pages budget "
                           f"({frontier.pages_done:,} pages); nothing to do", err=True)
                frontier.__exit__()
                sys.exit(0)
            settings = settings.replace(max_pages=left)
    except BaseException as e:
        frontier.__exit__()
        if isinstance(e, StateError):
            fail(str(e))
        raise
    return frontier, marks, settings


def run_crawl(
    settings: Settings,
    outputs: Sequence[OutputSpec | str] = (),
    *,
    quiet: bool,
    state: str | None = None,
    recrawl_failed: bool = False,
    frontier: SqliteFrontier | None = None,
    stats_path: str | None = None,
    report_path: str | None = None,
    progress_interval: float = 5.0,
    resume_marks: Sequence[Any] | None = None,
    role: Role = "records",
    **crawler_kwargs: Any,
) -> int:
    """Run a crawl with the progress display and signal handling; return the exit code.

    ``outputs`` are opened here through the registry (``open_outputs``) and
    closed at the end. ``state``: the crawl's state file, opened here unless
    ``frontier`` (its frontier, closed here, with ``resume_marks``) is given.
    ``crawler_kwargs`` go to ``Crawler`` (``spider=``). ``stats_path`` and
    ``report_path``: where the stats JSON and the HTML report go at the end
    (of this run)."""
    from ..spider.run import spider_settings
    from .logs import configure_logging
    from .progress import Progress, print_summary

    spider = crawler_kwargs.get("spider")
    final = spider_settings(settings, spider) if spider is not None else settings
    configure_logging(final.log_level, final.log_file, quiet=quiet)
    if state is not None and frontier is None:
        frontier, resume_marks, settings = open_state(
            state, [o.path if isinstance(o, OutputSpec) else o for o in outputs], settings,
            recrawl_failed=recrawl_failed)
    try:
        opened = open_outputs(outputs, resume_marks=resume_marks, role=role)
    except BaseException as e:
        if frontier is not None:
            frontier.__exit__()
        if isinstance(e, StateError):  # an output changed since the checkpoint: bad input
            fail(str(e))
        raise
    crawler = Crawler(settings, outputs=opened, frontier=frontier, **crawler_kwargs)
    got: list[int] = []

    def on_signal(signum: int) -> None:
        if got:  # the second Ctrl-C: leave at once
            os._exit(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)
        got.append(signum)
        click.echo("\nloopcrawl: stopping (press Ctrl-C again to quit at once)", err=True)
        crawler.stop()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        progress = None if quiet else Progress(crawler, interval=progress_interval)
        if progress:
            progress.start()
        try:
            await crawler.run()
        finally:
            if progress:
                await progress.close()

    tune_malloc()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(go())
    finally:
        try:
            opened.close()
        finally:
            if frontier is not None:
                frontier.__exit__()
        write_stats(crawler.stats, stats_path, report_path)
    if not quiet:
        print_summary(crawler)
        if state is not None and got:
            click.echo(f"loopcrawl: the crawl is saved in {state}: run the same command "
                       "to resume it", err=True)
    if got:
        return EXIT_SIGINT if got[0] == signal.SIGINT else EXIT_SIGTERM
    return 0


def write_stats(stats: CrawlStats | dict[str, Any], stats_path: str | None,
                report_path: str | None, title: str = "loopcrawl report") -> None:
    """Write the stats JSON and the HTML report, if asked; a file that cannot be
    written is a warning, not a lost crawl."""
    if not stats_path and not report_path:
        return
    from ..report import write_stats as write

    try:
        write(stats, stats_path=stats_path, report_path=report_path, title=title)
    except OutputError as e:
        click.echo(f"loopcrawl: warning: {e}", err=True)


def crawl_failed(error: LoopcrawlError, state: str | None) -> NoReturn:
    """A crawl stopped by an error (a full disk, say): one line, exit 1; with
    --state, say that the same command resumes."""
    hint = (f"; {state} holds the last checkpoint: fix this, then run the same command "
            "to resume") if state else ""
    click.echo(f"loopcrawl: error: {error}{hint}", err=True)
    sys.exit(1)


def check_output_path(path: str) -> None:
    """A clear ConfigError if ``path`` cannot be written (before any request)."""
    if path != "-":
        check_path(path)


def output_specs(appends: Sequence[str], overwrites: Sequence[str], fmt: str | None,
                 state: str | None) -> list[OutputSpec]:
    """-o (append) and -O (overwrite) as checked output specs: a bad name,
    format or place is a ConfigError before anything is opened."""
    specs = [OutputSpec(p, format_of(p, fmt), "append") for p in appends]
    specs += [OutputSpec(p, format_of(p, fmt), "overwrite") for p in overwrites]
    return parse_outputs(specs, resumable=state is not None)


# The defences against hostile servers and traps (docs/hardening.md): one
# option per Settings field, its help and default from the field.
_LIMITS = ("max_response_size", "max_redirects", "max_links_per_page", "max_url_length",
           "max_repeated_segments", "max_query_variants", "max_pages_per_host",
           "max_similar_pages",
           "connect_timeout", "read_timeout", "retry_backoff", "robots_error_retry")
_BELOW_TIMEOUT = ("connect_timeout", "read_timeout")  # default: min(field's, --timeout)


def limit_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for name in reversed(_LIMITS):
        field = setting_field(name)
        assert field is not None and field.option is not None
        default = None if name in _BELOW_TIMEOUT else field.default
        f = click.option(field.option, name, type=SettingValue(name), default=default,
                         show_default=default is not None, help=field.help)(f)
    return click.option("--sitemaps", "follow_sitemaps", is_flag=True,
                        help="Also seed from the hosts' sitemaps (robots.txt Sitemap: lines, "
                        "else /sitemap.xml).")(f)


def _positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value > 0 or value == float("inf"):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}")
    return value


def report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--stats, --report, --progress-interval: what a crawl leaves besides its output."""
    f = click.option("--progress-interval", type=float, default=5.0, show_default=True,
                     metavar="SECONDS", callback=_positive,
                     help="When stderr is not a terminal (CI, a log file): seconds between "
                     "two progress lines.")(f)
    f = click.option("--report", "report_path", metavar="FILE",
                     help="At the end, write an HTML report of the crawl here (one "
                     "self-contained file of charts).")(f)
    return click.option("--stats", "stats_path", metavar="FILE",
                        help="At the end, write the crawl's counters here as JSON "
                        "(docs/stats.md).")(f)


def _headers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, colon, value = v.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"expected 'Name: value', not {v!r}")
        out[name.strip()] = value.strip()
    return out


def _auth(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon:
        raise click.BadParameter("expected USER:PASSWORD")
    return user, password


def workers_value(value: str) -> int | str:
    """``--workers``: ``auto`` is one per usable core; anything else goes to
    the setting, which checks it as it checks every number."""
    if value.strip().lower() == "auto":
        from ..workers import usable_cores

        return usable_cores()
    try:
        return int(value)
    except ValueError:
        return value


def workers_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--workers", metavar="N|auto", default="1", show_default=True,
        help="Worker processes, each an event loop with its coroutines ('auto': one per "
        "usable core). Politeness, limits and the outputs stay global.")(f)


def session_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--header, --auth, --proxy, --no-cookies, --http-session, --ca-bundle,
    --insecure: Settings fields of the same meaning."""
    f = click.option("--insecure", "verify_tls", flag_value=False, default=True,
                     help="Do not verify TLS certificates (warned; for a test server only).")(f)
    f = click.option("--ca-bundle", metavar="FILE", default=None,
                     help="Trust the CA certificates in this PEM file (instead of the "
                     "system's) to verify HTTPS sites: a private CA.")(f)
    f = click.option("--http-session", "http_pool", flag_value=False, default=True,
                     help="Send GETs through aiohttp's ClientSession as well, not "
                     "loopcrawl's keep-alive pool (~0.1 CPU-ms a page slower).")(f)
    f = click.option("--no-cookies", "cookies", flag_value=False, default=True,
                     help="Keep no cookies (by default a crawl keeps the cookies sites set).")(f)
    f = click.option("--proxy", metavar="URL", default=None,
                     help="Send every request through this HTTP proxy (http://host:port).")(f)
    f = click.option("--auth", "http_auth", metavar="USER:PASSWORD", callback=_auth,
                     help="HTTP basic auth, sent to the seeds' hosts only.")(f)
    return click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'",
                        callback=_headers, help="A header for every request (repeatable).")(f)


def log_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--log-level and --log-file: the Settings fields of those names."""
    for name in ("log_file", "log_level"):
        field = setting_field(name)
        assert field is not None and field.option is not None
        f = click.option(field.option, name, type=SettingValue(name),
                         metavar=field.metavar or "LEVEL", default=None, help=field.help)(f)
    return f


@main.command()
@click.argument("urls", nargs=-1, required=True)
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE",
              help="Write a record per page to FILE, in the format its name ends in: .jsonl "
              "(.jsonl.gz), .json, .csv, .db/.sqlite, .parquet, or .warc/.warc.gz (every "
              "response); '-' is JSON lines on stdout. Adds to an existing file. Repeatable.")
@click.option("-O", "--overwrite-output", "overwrites", multiple=True, metavar="FILE",
              help="As -o, but replace the file if it exists.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
              help="The format of every -o/-O, whatever its name.")
@click.option("--concurrency", type=SettingValue("concurrency"), default=_DEFAULTS.concurrency, show_default=True,
              help="Requests in flight, all hosts together.")
@click.option("--per-host", type=SettingValue("per_host"), default=_DEFAULTS.per_host, show_default=True,
              help="Requests in flight to one host.")
@click.option("--delay", type=SettingValue("delay"), default=_DEFAULTS.delay, show_default=True,
              help="Seconds between two requests to one host.")
@click.option("--depth", type=SettingValue("depth"), default=None, help="Follow links this many hops from a seed.")
@click.option("--max-pages", type=SettingValue("max_pages"), default=None,
              help="Stop after this many pages.")
@click.option("--scope", type=click.Choice(["host", "domain", "any"]), default="host",
              show_default=True, help="Which links to follow: the seeds' hosts, their "
              "domains (with subdomains), or any.")
@click.option("--allow", multiple=True, metavar="REGEX", help="Follow only URLs matching this.")
@click.option("--deny", multiple=True, metavar="REGEX", help="Never follow URLs matching this.")
@click.option("--user-agent", default=DEFAULT_USER_AGENT, show_default=True)
@click.option("--timeout", type=SettingValue("timeout"), default=_DEFAULTS.timeout, show_default=True,
              help="Seconds for a whole request, redirects included.")
@click.option("--retries", type=SettingValue("retries"), default=_DEFAULTS.retries, show_default=True,
              help="Extra attempts after a timeout, connection error, 5xx or 429.")
@click.option("--ignore-robots", is_flag=True, help="Do not obey robots.txt.")
@click.option("--state", type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep the crawl in this SQLite file: stop or kill it at any moment, "
              "run the same command again, and it resumes (output: every page once).")
@click.option("--recrawl-failed", is_flag=True,
              help="With --state: fetch the pages that failed again (and only those); "
              "their new records are appended to the output.")
@limit_options
@session_options
@log_options
@workers_option
@click.option("-q", "--quiet", is_flag=True, help="No progress display and no summary.")
@report_options
def crawl(
    urls: tuple[str, ...],
    outputs: tuple[str, ...],
    overwrites: tuple[str, ...],
    fmt: str | None,
    concurrency: int,
    per_host: int,
    delay: float,
    depth: int | None,
    max_pages: int | None,
    scope: str,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    user_agent: str,
    timeout: float,
    retries: int,
    ignore_robots: bool,
    state: str | None,
    recrawl_failed: bool,
    log_level: str | None,
    log_file: str | None,
    workers: str,
    quiet: bool,
    stats_path: str | None,
    report_path: str | None,
    progress_interval: float,
    **limits: Any,
) -> None:
    """Crawl from the seed URLS, following links within the scope."""
    if recrawl_failed and not state:
        fail("--recrawl-failed needs --state FILE (the crawl whose failed pages to fetch again)")
    for name in _BELOW_TIMEOUT:
        if limits[name] is None:
            limits[name] = min(timeout, getattr(_DEFAULTS, name))
    try:
        specs = output_specs(outputs, overwrites, fmt, state)
        settings = Settings(
            seeds=urls,
            output=specs[0].path if specs else None,
            concurrency=concurrency,
            per_host=per_host,
            delay=delay,
            depth=depth,
            max_pages=max_pages,
            scope=scope,
            allow=allow,
            deny=deny,
            user_agent=user_agent,
            timeout=timeout,
            retries=retries,
            obey_robots=not ignore_robots,
            log_level=log_level,
            log_file=log_file,
            workers=workers_value(workers),  # type: ignore[arg-type]
            quiet=quiet,
            **limits,
        )
        for path in (stats_path, report_path):
            if path:
                check_output_path(path)
        code = run_crawl(settings, specs, quiet=quiet, state=state,
                         recrawl_failed=recrawl_failed, stats_path=stats_path,
                         report_path=report_path, progress_interval=progress_interval)
    except ConfigError as e:
        fail(explain(e))
    except LoopcrawlError as e:
        crawl_failed(e, state)
    sys.exit(code)


@main.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Write the HTML report here.")
@click.option("--stats", "stats_path", metavar="FILE", help="Also write the stats JSON here.")
@click.option("--title", default="loopcrawl report", show_default=True,
              help="The report's title.")
def report(source: str, output: str, stats_path: str | None, title: str) -> None:
    """Build the HTML report of a finished crawl from SOURCE: its page records
    (as crawl -o wrote them: .jsonl, .jsonl.gz, .json, .csv, .db, .parquet), its
    --state file, or its --stats JSON."""
    from ..report import load_stats
    from ..report import write_stats as write

    for path in (output, stats_path):
        if path:
            check_output_path(path)
    try:
        data = load_stats(source)
    except ConfigError as e:
        fail(str(e))
    try:
        write(data, stats_path=stats_path, report_path=output, title=title)
    except OutputError as e:
        click.echo(f"loopcrawl: error: {e}", err=True)
        sys.exit(1)
    click.echo(f"loopcrawl: report of {data['records']:,} pages written to {output}", err=True)


@main.command()
@click.option("--state", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The state file of a crawl (crawl --state FILE).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def status(state: str, as_json: bool) -> None:
    """Queued / in flight / done / failed counts and the top hosts of a --state crawl."""
    from ..frontier.sqlite import read_status

    try:
        st = read_status(state)
    except StateError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(st.to_dict(), indent=2))
        return
    ago = f"{time.time() - st.checkpoint_at:,.0f} s ago" if st.checkpoint_at else "never"
    running = f"running (pid {st.running_pid})" if st.running_pid else "not running"
    rows = [
        ("state", f"{st.path}  ({running}; last checkpoint {ago})"),
        *[("output", f"{path}  ({mark:,} bytes)" if isinstance(mark, int) else
           f"{path}  (rows {mark})") for path, mark in st.outputs.items()],
        ("queued", f"{st.queued:,}"),
        ("in flight", f"{st.in_flight:,}"),
        ("done", f"{st.done:,}"),
        ("failed", f"{st.failed:,}"),
        ("seen", f"{st.seen:,}"),
    ]
    for name, value in rows:
        click.echo(f"{name:>10}  {value}")
    if st.top_hosts:
        width = max(len(h.host) for h in st.top_hosts)
        click.echo(f"{'top hosts':>10}  {'':{width}}  {'queued':>10} {'done':>10} {'failed':>8}")
        for h in st.top_hosts:
            click.echo(f"{'':>10}  {h.host:{width}}  {h.queued:>10,} {h.done:>10,} "
                       f"{h.failed:>8,}")


@main.command()
@click.option("--pages", type=int, default=1000, show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True,
              help="Delay every response this long, to model a slow server.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--expected", is_flag=True,
              help="Print the URLs a correct crawl finds, one a line, and exit.")
@click.option("--hostile", is_flag=True,
              help="Also serve the hostile corner (bombs, traps, slow answers) under /hostile/.")
def testsite(pages: int, port: int, host: str, latency_ms: float, seed: int,
             expected: bool, hostile: bool) -> None:
    """Serve the built-in synthetic test site on 127.0.0.1."""
    from ..testsite import Site
    from ..testsite import run as run_site

    if pages <= 0:
        fail("--pages must be positive")
    if expected:
        for url in sorted(Site(pages, seed).expected(f"http://{host}:{port}")):
            click.echo(url)
        return
    try:
        run_site(pages=pages, port=port, latency_ms=latency_ms, seed=seed, host=host,
                 hostile=hostile)
    except OSError as e:
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")


@main.command()
@click.option("--pages", type=int, default=3000, show_default=True)
@click.option("--latency-ms", type=float, default=20.0, show_default=True)
@click.option("--concurrency", type=SettingValue("concurrency"), default=100, show_default=True)
@click.option("-o", "--output", default="demo-output/pages.jsonl", show_default=True)
def demo(pages: int, latency_ms: float, concurrency: int, output: str) -> None:
    """Start the test site, crawl it with the live display, check the result."""
    import orjson

    from ..testsite import ServerProcess, Site

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with ServerProcess(pages=pages, latency_ms=latency_ms) as server:
        click.echo(f"test site: {server.base_url}/ ({pages} pages, {latency_ms:g} ms latency "
                   "per response)", err=True)
        settings = Settings(seeds=(server.base_url + "/",), output=output,
                            concurrency=concurrency, per_host=concurrency)
        code = run_crawl(settings, [OutputSpec(output, format_of(output), "overwrite")],
                         quiet=False)
        expected = set(Site(pages).expected(server.base_url))
    found: list[str] = []
    with open(output, "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            if rec.get("status") == 200:
                found.append(rec["final_url"])
    dupes = len(found) - len(set(found))
    missing = expected - set(found)
    click.echo(
        f"checked against the site's ground truth: {len(set(found) & expected):,}/"
        f"{len(expected):,} expected pages found, {len(missing):,} missing, "
        f"{dupes} fetched twice", err=True)
    sys.exit(code)


@main.command()
@click.option("--io-models", "io_models", is_flag=True,
              help="The same crawl done four ways: blocking and sequential, a thread pool, "
              "one event loop, processes each with an event loop.")
@click.option("--pages", type=int, default=2000, show_default=True)
@click.option("--latency-ms", type=float, default=50.0, show_default=True,
              help="The test site answers every request after this long.")
@click.option("--concurrency", default="1,4,16,64,256", show_default=True,
              help="Requests in flight (K) to sweep, comma-separated.")
@click.option("--processes", type=int, default=None,
              help="Processes of the multi-process model (default: one per core).")
@click.option("--seconds-per-run", type=float, default=5.0, show_default=True,
              help="Cap each run near this long (slow models fetch fewer pages).")
@click.option("--quiet-wait", type=float, default=10.0, show_default=True,
              help="Before each run, wait up to this many seconds for other processes "
              "to leave the CPU (0: never wait).")
@click.option("--out", default="docs/io-models.png", show_default=True,
              help="Write the chart (PNG) here.")
@click.option("--json", "json_out", default=None, help="Also write the results as JSON here.")
def bench(io_models: bool, pages: int, latency_ms: float, concurrency: str,
          processes: int | None, seconds_per_run: float, quiet_wait: float, out: str,
          json_out: str | None) -> None:
    """Measure the IO models behind loopcrawl on this machine (--io-models).

    The crawler comparison with Scrapy and Crawlee is `make bench`.
    """
    import importlib.util

    if not io_models:
        fail("say what to measure: --io-models (the comparison with other crawlers is "
             "`make bench`)")
    try:
        ks = tuple(int(k) for k in concurrency.split(",") if k.strip())
    except ValueError:
        fail(f"--concurrency must be integers separated by commas, not {concurrency!r}")
    if not ks or min(ks) < 1:
        fail("--concurrency values must be at least 1")
    if pages < 1 or latency_ms < 0 or seconds_per_run <= 0 or (processes or 1) < 1:
        fail("--pages, --processes and --seconds-per-run must be positive, "
             "--latency-ms not negative")
    if importlib.util.find_spec("matplotlib") is None:
        fail("the chart needs matplotlib: pip install 'loopcrawl[bench]'")
    from ..bench import findings, format_table, results_json, run_io_models, write_chart

    results = run_io_models(pages=pages, latency_ms=latency_ms, concurrency=ks,
                            processes=processes, seconds_per_run=seconds_per_run,
                            quiet_wait=quiet_wait, echo=lambda m: click.echo(m, err=True))
    click.echo(format_table(results, latency_ms))
    click.echo("\n" + findings(results, latency_ms))
    write_chart(results, out, latency_ms)
    click.echo(f"chart: {out}", err=True)
    if json_out:
        Path(json_out).write_text(json.dumps(results_json(results), indent=2))
    if all(r.error for r in results):
        sys.exit(1)


@main.command()
@click.argument("spider_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE",
              help="Write items to FILE, in the format its name ends in: .jsonl "
              "(.jsonl.gz), .json, .csv, .db/.sqlite, .parquet, or .warc/.warc.gz (every "
              "response). Adds to an existing file. Repeatable. Default: JSON lines on stdout.")
@click.option("-O", "--overwrite-output", "overwrites", multiple=True, metavar="FILE",
              help="As -o, but replace the file if it exists.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
              help="The format of every -o/-O, whatever its name.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A setting (a Settings field: concurrency=8, depth=3, obey_robots=false, "
              "...), over the spider's custom_settings. Repeatable.")
@click.option("--spider", "spider_name", metavar="NAME",
              help="The spider to run, if the file defines several.")
@click.option("--max-pages", type=int, default=None, help="Stop after this many pages.")
@click.option("--state", type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep the crawl in this SQLite file, to resume it after any stop with "
              "the same command (each page's items written once; -o .jsonl or .db).")
@click.option("--recrawl-failed", is_flag=True,
              help="With --state: fetch the pages that failed again (and only those).")
@session_options
@log_options
@click.option("-q", "--quiet", is_flag=True, help="No progress display and no summary.")
@report_options
@workers_option
def run(spider_file: str, outputs: tuple[str, ...], overwrites: tuple[str, ...],
        fmt: str | None,
        overrides: tuple[str, ...], spider_name: str | None, max_pages: int | None,
        state: str | None, recrawl_failed: bool, log_level: str | None,
        log_file: str | None,
        quiet: bool, headers: dict[str, str], http_auth: tuple[str, str] | None,
        proxy: str | None, cookies: bool, http_pool: bool, ca_bundle: str | None,
        verify_tls: bool, stats_path: str | None, report_path: str | None,
        progress_interval: float, workers: str) -> None:
    """Run the spider defined in SPIDER_FILE; its items go to -o (or stdout)."""
    from ..settings import parse_setting
    from ..spider.base import load_spider
    from ..spider.run import spider_settings

    try:
        cls = load_spider(spider_file, spider_name)
        try:
            spider = cls()
        except Exception as e:
            raise ConfigError(f"{spider_file}: {cls.__name__}() failed: "
                              f"{type(e).__name__}: {e}") from None
        values: dict[str, Any] = dict(parse_setting(o) for o in overrides)
        given = {"headers": headers, "http_auth": http_auth, "proxy": proxy,
                 "workers": workers_value(workers) if workers != "1" else None,
                 "max_pages": max_pages, "ca_bundle": ca_bundle, "log_level": log_level,
                 "log_file": log_file}
        values.update({k: v for k, v in given.items() if v})
        flags = {"cookies": cookies, "http_pool": http_pool, "verify_tls": verify_tls}
        values.update({k: False for k, on in flags.items() if not on})
        # Command line over custom_settings over the defaults (as in Scrapy).
        spider.custom_settings = {**spider.custom_settings, **values}
        base = Settings(quiet=quiet)
        spider_settings(base, spider)  # bad values: one line and exit 2, before any output
        for o in (stats_path, report_path):
            if o:
                check_output_path(o)
        if recrawl_failed and not state:
            fail("--recrawl-failed needs --state FILE (the crawl whose failed pages to fetch "
                 "again)")
        specs = output_specs(outputs or (() if overwrites else ("-",)), overwrites, fmt, state)
        frontier = marks = None
        if state:
            frontier, marks, settings = open_state(
                state, [o.path for o in specs], spider_settings(base, spider),
                recrawl_failed=recrawl_failed)
            if settings.max_pages is not None:  # what is left of the budget
                spider.custom_settings = {**spider.custom_settings,
                                          "max_pages": settings.max_pages}
        code = run_crawl(base, specs, quiet=quiet, state=state, frontier=frontier,
                         resume_marks=marks, role="items", spider=spider, stats_path=stats_path,
                         report_path=report_path, progress_interval=progress_interval)
    except ConfigError as e:
        fail(explain(e))
    except LoopcrawlError as e:
        crawl_failed(e, state)
    sys.exit(code)


@main.command()
@click.argument("url")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A setting (a Settings field), as for run.")
@session_options
def shell(url: str, overrides: tuple[str, ...], headers: dict[str, str],
          http_auth: tuple[str, str] | None, proxy: str | None, cookies: bool,
          http_pool: bool, ca_bundle: str | None, verify_tls: bool) -> None:
    """Fetch URL and open a Python prompt with `response` loaded (and fetch())."""
    from ..errors import FetchError
    from ..settings import parse_setting
    from .shell import fetch, interact

    try:
        values: dict[str, Any] = dict(parse_setting(o) for o in overrides)
        values.update(headers=headers, http_auth=http_auth, proxy=proxy, cookies=cookies,
                      http_pool=http_pool, ca_bundle=ca_bundle, verify_tls=verify_tls)
        settings = Settings(**values)
        response = fetch(url, settings)
    except ConfigError as e:
        fail(str(e))
    except FetchError as e:
        click.echo(f"loopcrawl: error: {url}: {e}", err=True)
        sys.exit(1)
    interact(response, settings)


if __name__ == "__main__":
    main()
