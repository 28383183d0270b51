"""The commands around crawls: ``status``, ``testsite``, ``demo``, ``bench``, ``shell``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..core.runner import CrawlRun
from ..errors import ConfigError, StateError
from ..settings import Settings
from .common import explain, fail, notice, run_or_fail
from .common import report as print_result
from .options import SESSION, given_settings, set_option, settings_options

_PORT = click.IntRange(0, 65535)  # 0: any free port
_POSITIVE = click.IntRange(min=1)


@click.command()
@click.option("--state", type=click.Path(dir_okay=False), metavar="FILE",
              help="The state file of a crawl (crawl --state FILE).")
@click.option("--redis", "redis_url", metavar="URL",
              help="The Redis of a shared crawl (with --crawl NAME; docs/distributed.md).")
@click.option("--crawl", "crawl_name", metavar="NAME", help="The shared crawl's name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def status(state: str | None, redis_url: str | None, crawl_name: str | None,
           as_json: bool) -> None:
    """Queued / in flight / done / failed counts and the top hosts of a crawl:
    a --state file's, or a shared one's in Redis (--redis URL --crawl NAME:
    also pages/s over the last minute and the live workers)."""
    from ..frontier.sqlite import read_status

    if (state is None) == (redis_url is None):
        fail("say which crawl: --state FILE, or --redis URL --crawl NAME")
    if redis_url is not None or crawl_name is not None:
        if state is not None or redis_url is None or crawl_name is None:
            fail("--redis URL and --crawl NAME go together (and without --state)")
        from .distributed import show_redis_status

        show_redis_status(redis_url, crawl_name, as_json)
        return
    assert state is not None
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


@click.command()
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
    from ..errors import OutputError
    from ..outputs import check_path
    from ..report import load_stats, write_stats

    try:
        for path in (output, stats_path):
            if path and path != "-":
                check_path(path)
        data = load_stats(source)
    except ConfigError as e:
        fail(str(e))
    try:
        write_stats(data, stats_path=stats_path, report_path=output, title=title)
    except OutputError as e:
        click.echo(f"loopcrawl: error: {e}", err=True)
        sys.exit(1)
    click.echo(f"loopcrawl: report of {data['records']:,} pages written to {output}", err=True)


@click.command()
@click.option("--pages", type=_POSITIVE, default=1000, show_default=True)
@click.option("--port", type=_PORT, default=8000, show_default=True,
              help="The port to listen on (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0, 600_000), default=0.0,
              show_default=True, help="Delay every response this long, to model a slow server.")
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

    if expected:
        for url in sorted(Site(pages, seed).expected(f"http://{host}:{port}")):
            click.echo(url)
        return
    try:
        run_site(pages=pages, port=port, latency_ms=latency_ms, seed=seed, host=host,
                 hostile=hostile)
    except OSError as e:
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")


@click.command()
@click.option("--pages", type=_POSITIVE, default=3000, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0, 600_000), default=20.0,
              show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("-o", "--output", default="demo-output/pages.jsonl", show_default=True)
def demo(pages: int, latency_ms: float, concurrency: int, output: str) -> None:
    """Start the test site, crawl it with the live display, check the result."""
    import orjson

    from ..testsite import ServerProcess, Site
    from .logs import configure_logging
    from .progress import Progress

    configure_logging()
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")
    with ServerProcess(pages=pages, latency_ms=latency_ms) as server:
        click.echo(f"test site: {server.base_url}/ ({pages} pages, {latency_ms:g} ms latency "
                   "per response)", err=True)
        settings = Settings(seeds=(server.base_url + "/",), output=output,
                            concurrency=concurrency, per_host=concurrency)
        result = run_or_fail(CrawlRun(settings, outputs=[output], mode="overwrite",
                                      display=Progress, on_notice=notice))
        print_result(result, quiet=False)
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
    sys.exit(result.exit_code)


@click.command()
@click.option("--io-models", "io_models", is_flag=True,
              help="The same crawl done four ways: blocking and sequential, a thread pool, "
              "one event loop, processes each with an event loop.")
@click.option("--pages", type=_POSITIVE, default=2000, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0, 600_000), default=50.0,
              show_default=True, help="The test site answers every request after this long.")
@click.option("--concurrency", default="1,4,16,64,256", show_default=True,
              help="Requests in flight (K) to sweep, comma-separated.")
@click.option("--processes", type=click.IntRange(1, 1024), default=None,
              help="Processes of the multi-process model (default: one per core).")
@click.option("--seconds-per-run", type=click.FloatRange(0, 3600, min_open=True), default=5.0,
              show_default=True, help="Cap each run near this long (slow models fetch fewer "
              "pages).")
@click.option("--quiet-wait", type=click.FloatRange(0, 3600), default=10.0, show_default=True,
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
    if importlib.util.find_spec("matplotlib") is None:
        fail("the chart needs matplotlib: pip install 'loopcrawl[bench]'")
    io = _io_models()
    results = io.run_io_models(pages=pages, latency_ms=latency_ms, concurrency=ks,
                            processes=processes, seconds_per_run=seconds_per_run,
                            quiet_wait=quiet_wait, echo=lambda m: click.echo(m, err=True))
    click.echo(io.format_table(results, latency_ms))
    click.echo("\n" + io.findings(results, latency_ms))
    io.write_chart(results, out, latency_ms)
    click.echo(f"chart: {out}", err=True)
    if json_out:
        Path(json_out).write_text(json.dumps(io.results_json(results), indent=2))
    if all(r.error for r in results):
        sys.exit(1)


@click.command()
@click.argument("url")
@set_option
@settings_options(SESSION)
@click.pass_context
def shell(ctx: click.Context, url: str, overrides: tuple[str, ...], **params: Any) -> None:
    """Fetch URL and open a Python prompt with `response` loaded (and fetch())."""
    from ..errors import FetchError
    from .shell import fetch, interact

    try:
        settings = Settings(**given_settings(ctx, params, overrides))
        response = fetch(url, settings)
    except ConfigError as e:
        fail(explain(e))
    except FetchError as e:
        click.echo(f"loopcrawl: error: {url}: {e}", err=True)
        sys.exit(1)
    interact(response, settings)


def _io_models() -> Any:
    """The measurement lives with the other benchmarks (``benchmarks/io_models.py``,
    beside the package in a source checkout); this command is its entry."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "io_models.py"
    spec = importlib.util.spec_from_file_location("loopcrawl_io_models", path)
    if not path.is_file() or spec is None or spec.loader is None:
        fail(f"bench --io-models runs from a source checkout (no {path})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
