"""The command line. Thin: it builds settings and calls the library."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click

from .engine import Crawler, new_event_loop
from .errors import ConfigError, LoopcrawlError
from .exporters import JsonlWriter
from .settings import DEFAULT_USER_AGENT, Settings

EXIT_USAGE = 2
_DEFAULTS = Settings()
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def fail(message: str) -> None:
    """One clear line on stderr and exit code 2: never a traceback for bad input."""
    click.echo(f"loopcrawl: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loopcrawl")
def main() -> None:
    """loopcrawl: a fast, polite web crawler on the asyncio event loop."""


def run_crawl(settings: Settings, output: str | None, *, quiet: bool) -> int:
    """Run a crawl with the progress display and signal handling; return the exit code."""
    from .progress import Progress, print_summary

    writer = JsonlWriter(output) if output else None
    crawler = Crawler(settings, writer=writer)
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
        progress = None if quiet else Progress(crawler)
        if progress:
            progress.start()
        try:
            await crawler.run()
        finally:
            if progress:
                await progress.close()

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(go())
    finally:
        if writer is not None:
            writer.close()
    if not quiet:
        print_summary(crawler)
    if got:
        return EXIT_SIGINT if got[0] == signal.SIGINT else EXIT_SIGTERM
    return 0


def check_output_path(output: str) -> None:
    if output == "-":
        return
    parent = Path(output).resolve().parent
    if not parent.is_dir():
        fail(f"cannot write {output}: directory {parent} does not exist")
    if Path(output).is_dir():
        fail(f"cannot write {output}: it is a directory")
    if not os.access(parent, os.W_OK) or (Path(output).exists() and not os.access(output, os.W_OK)):
        fail(f"cannot write {output}: permission denied")


@main.command()
@click.argument("urls", nargs=-1, required=True)
@click.option("-o", "--output", help="Write one JSON line per page to this file ('-' for stdout).")
@click.option("--concurrency", type=int, default=_DEFAULTS.concurrency, show_default=True,
              help="Requests in flight, all hosts together.")
@click.option("--per-host", type=int, default=_DEFAULTS.per_host, show_default=True,
              help="Requests in flight to one host.")
@click.option("--delay", type=float, default=_DEFAULTS.delay, show_default=True,
              help="Seconds between two requests to one host.")
@click.option("--depth", type=int, default=None, help="Follow links this many hops from a seed.")
@click.option("--max-pages", type=int, default=None, help="Stop after this many pages.")
@click.option("--scope", type=click.Choice(["host", "domain", "any"]), default="host",
              show_default=True, help="Which links to follow: the seeds' hosts, their "
              "domains (with subdomains), or any.")
@click.option("--allow", multiple=True, metavar="REGEX", help="Follow only URLs matching this.")
@click.option("--deny", multiple=True, metavar="REGEX", help="Never follow URLs matching this.")
@click.option("--user-agent", default=DEFAULT_USER_AGENT, show_default=True)
@click.option("--timeout", type=float, default=_DEFAULTS.timeout, show_default=True,
              help="Seconds for a whole request, redirects included.")
@click.option("--retries", type=int, default=_DEFAULTS.retries, show_default=True,
              help="Extra attempts after a timeout, connection error, 5xx or 429.")
@click.option("--ignore-robots", is_flag=True, help="Do not obey robots.txt.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display and no summary.")
def crawl(
    urls: tuple[str, ...],
    output: str | None,
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
    quiet: bool,
) -> None:
    """Crawl from the seed URLS, following links within the scope."""
    try:
        settings = Settings(
            seeds=urls,
            output=output,
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
            connect_timeout=min(timeout, _DEFAULTS.connect_timeout),
            read_timeout=min(timeout, _DEFAULTS.read_timeout),
            retries=retries,
            obey_robots=not ignore_robots,
            quiet=quiet,
        )
        if output:
            check_output_path(output)
        code = run_crawl(settings, output, quiet=quiet)
    except ConfigError as e:
        fail(str(e))
    except LoopcrawlError as e:
        click.echo(f"loopcrawl: error: {e}", err=True)
        sys.exit(1)
    sys.exit(code)


@main.command()
@click.option("--pages", type=int, default=1000, show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True,
              help="Delay every response this long, to model a slow server.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--expected", is_flag=True,
              help="Print the URLs a correct crawl finds, one a line, and exit.")
def testsite(pages: int, port: int, host: str, latency_ms: float, seed: int,
             expected: bool) -> None:
    """Serve the built-in synthetic test site on 127.0.0.1."""
    from .testsite import Site
    from .testsite import run as run_site

    if pages <= 0:
        fail("--pages must be positive")
    if expected:
        for url in sorted(Site(pages, seed).expected(f"http://{host}:{port}")):
            click.echo(url)
        return
    try:
        run_site(pages=pages, port=port, latency_ms=latency_ms, seed=seed, host=host)
    except OSError as e:
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")


@main.command()
@click.option("--pages", type=int, default=3000, show_default=True)
@click.option("--latency-ms", type=float, default=20.0, show_default=True)
@click.option("--concurrency", type=int, default=100, show_default=True)
@click.option("-o", "--output", default="demo-output/pages.jsonl", show_default=True)
def demo(pages: int, latency_ms: float, concurrency: int, output: str) -> None:
    """Start the test site, crawl it with the live display, check the result."""
    import orjson

    from .testsite import ServerProcess, Site

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with ServerProcess(pages=pages, latency_ms=latency_ms) as server:
        click.echo(f"test site: {server.base_url}/ ({pages} pages, {latency_ms:g} ms latency "
                   "per response)", err=True)
        settings = Settings(seeds=(server.base_url + "/",), output=output,
                            concurrency=concurrency, per_host=concurrency)
        code = run_crawl(settings, output, quiet=False)
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


if __name__ == "__main__":
    main()
