#!/usr/bin/env python3
"""``make bench``: loopcrawl, Scrapy and Crawlee for Python crawl the same site.

One run:

1. starts the built-in test site in its own process, and nginx serving a static
   copy of it when nginx is installed (so that the server is not the limit), and
   measures the requests/s each server sustains;
2. crawls the 20,000-page site with each crawler, a subprocess measured with
   ``os.wait4`` (wall, user + sys CPU, peak RSS), a fresh server each time;
3. checks every crawl against the site's ground truth before reporting speed:
   pages found vs expected, duplicates (in the output and at the server),
   fetches robots.txt forbids, off-site fetches (from the server's own log);
4. crawls a 3,000-page site that answers after 100 ms with concurrency 100 and
   compares the wall time with its floor (requests x latency / concurrency);
5. prints the tables and, on a full run, writes them into BENCHMARKS.md
   (``## Crawl speed (make bench)``) and records ``loopcrawl bench --io-models``.

Peers are installed on first use into ``benchmarks/.venvs/<name>``; one that
cannot be installed is reported as such. Iterate on loopcrawl alone with
``python benchmarks/run.py --only loopcrawl`` (add ``--profile`` for the top
functions by own time).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import (  # noqa: E402
    Check,
    Measured,
    aiohttp_rate,
    check,
    cpu_busy_seconds,
    field_of,
    read_found,
    run_measured,
    server_span,
    wait_quiet,
    wrk_rate,
)
from servers import Nginx, PythonSite, StaticFiles, free_port, nginx_version  # noqa: E402

from loopcrawl.testsite import Site  # noqa: E402

VENVS = HERE / ".venvs"
OUT = HERE / "out"
CRAWL_TIMEOUT = 1200.0  # seconds for one crawl of the big site, whoever crawls it
INSTALL_TIMEOUT = 900.0
QUIET_WAIT = 120.0  # seconds to wait, before each crawl, for other processes to calm down
SECTION = "## Crawl speed (make bench)"
IO_SECTION = "## IO models (loopcrawl bench --io-models)"


# -- the crawlers ---------------------------------------------------------------
@dataclass(slots=True)
class Crawler:
    key: str
    name: str
    url_field: str  # which field of a 200 record holds the page's final URL
    dist: str | None = None  # the PyPI distribution (peers)
    pip: list[str] = field(default_factory=list)
    script: str | None = None
    python: str = sys.executable
    version: str = ""
    unavailable: str | None = None  # why it cannot run

    def command(self, url: str, out: str, concurrency: int, per_host: int) -> list[str]:
        if self.key == "loopcrawl":
            exe = Path(sys.executable).with_name("loopcrawl")
            head = [str(exe)] if exe.exists() else [sys.executable, "-m", "loopcrawl"]
            cmd = [*head, "crawl", url + "/", "-O", out, "--quiet", "--retries", "0"]
            if (concurrency, per_host) != (64, 8):  # loopcrawl's defaults
                cmd += ["--concurrency", str(concurrency), "--per-host", str(per_host)]
            return cmd
        assert self.script is not None
        cmd = [self.python, str(HERE / self.script), url + "/", out,
               "--concurrency", str(concurrency if self.key == "scrapy" else per_host)]
        if self.key == "scrapy":
            cmd += ["--per-host", str(per_host)]
        return cmd


def crawlers() -> dict[str, Crawler]:
    return {
        "loopcrawl": Crawler("loopcrawl", "loopcrawl", "final_url", version=_version("loopcrawl")),
        "scrapy": Crawler("scrapy", "Scrapy", "url", dist="scrapy", pip=["scrapy>=2.11,<3"],
                          script="peers/scrapy_spider.py"),
        "crawlee": Crawler("crawlee", "Crawlee for Python", "url", dist="crawlee",
                           pip=["crawlee[parsel]>=1,<2"], script="peers/crawlee_spider.py"),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def ensure_peer(c: Crawler, say: Callable[[str], None]) -> None:
    """Create benchmarks/.venvs/<key> and pip-install the peer (first run only)."""
    venv = VENVS / c.key
    py = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = " ".join(c.pip)
    if not (stamp.exists() and stamp.read_text() == want and py.exists()):
        say(f"installing {c.name} into {venv.relative_to(ROOT)} ({want}) ...")
        base = getattr(sys, "_base_executable", sys.executable)
        steps = [[base, "-m", "venv", "--clear", str(venv)],
                 [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *c.pip]]
        for cmd in steps:
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as e:
                c.unavailable = f"not installed: {type(e).__name__}: {e}"
                return
            if p.returncode != 0:
                lines = [ln for ln in (p.stderr + p.stdout).splitlines()
                         if ln.strip() and not ln.startswith("WARNING")]
                c.unavailable = "not installed: " + (lines[-1] if lines else f"exit {p.returncode}")
                return
        stamp.write_text(want)
    c.python = str(py)
    p = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({c.dist!r}))"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        c.unavailable = "not installed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
        return
    c.version = p.stdout.strip()


# -- one measured crawl ---------------------------------------------------------
@dataclass(slots=True)
class Result:
    crawler: str
    server: str
    runs: list[Measured]
    checks: list[Check]
    spans: list[float]  # server-observed crawl time of each run
    note: str = ""

    def median(self, get: Callable[[Measured], float]) -> float:
        return statistics.median(get(m) for m in self.runs)

    @property
    def check(self) -> Check:
        """The worst run's check (correctness must hold in every run)."""
        return max(self.checks, key=lambda c: (not c.correct, c.missing + c.extra + c.dupes_out
                                               + c.dupes_fetched + c.forbidden + c.offsite))

    @property
    def wall(self) -> float:
        return self.median(lambda m: m.wall)

    @property
    def cpu(self) -> float:
        return self.median(lambda m: m.cpu)

    @property
    def rss_mb(self) -> float:
        return self.median(lambda m: m.maxrss_kib) / 1024

    @property
    def pages(self) -> int:
        return statistics.median_low(c.found + c.extra for c in self.checks)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_page(self) -> float:
        return self.cpu * 1000 / self.pages if self.pages else float("nan")

    @property
    def span(self) -> float:
        return statistics.median(self.spans) if self.spans else 0.0


Expect = Callable[[str], set[str]]  # base URL -> the pages a correct crawl finds


def crawl_once(c: Crawler, make_server: Callable[[], Any], expected: Expect,
               forbidden: Callable[[str], bool], concurrency: int, per_host: int,
               workdir: str, tag: str) -> tuple[Measured, Check, float]:
    out = os.path.join(workdir, f"{c.key}-{tag}.jsonl")
    log = os.path.join(workdir, f"{c.key}-{tag}.log")
    with make_server() as server:
        wait_quiet(QUIET_WAIT, say=print)
        sc0, b0 = server.cpu_seconds(), cpu_busy_seconds()
        m = run_measured(c.command(server.base_url, out, concurrency, per_host),
                         timeout=CRAWL_TIMEOUT, log_path=log, cwd=workdir)
        b1, sc1 = cpu_busy_seconds(), server.cpu_seconds()
    m.server_cpu = sc1 - sc0
    m.others_cpu = max(0.0, b1 - b0 - m.cpu - m.server_cpu)
    ck = check(expected(server.base_url), read_found(out, c.url_field), server.hits,
               server.base_url, forbidden)
    return m, ck, server_span(server.hits)


def crawl_repeated(c: Crawler, server_name: str, make_server: Callable[[], Any],
                   expected: Expect, forbidden: Callable[[str], bool], concurrency: int,
                   per_host: int, repeat: int, workdir: str, say: Callable[[str], None]
                   ) -> Result:
    res = Result(c.name, server_name, [], [], [])
    for i in range(repeat):
        m, ck, span = crawl_once(c, make_server, expected, forbidden, concurrency, per_host,
                                 workdir, f"{server_name.split()[0].lower()}-{i}")
        res.runs.append(m)
        res.checks.append(ck)
        res.spans.append(span)
        status = "ok" if ck.correct else "INCORRECT"
        if m.others_cpu > 0.1 * m.wall:
            status += f"; other processes used {m.others_cpu / m.wall:.0%} of a core meanwhile"
        if m.returncode != 0 or m.timed_out:
            status = f"exit {m.returncode}" + (" (timed out)" if m.timed_out else "")
            res.note = m.stderr_tail.strip().splitlines()[-1] if m.stderr_tail.strip() else status
        say(f"  {c.name:<20} {server_name:<17} run {i + 1}/{repeat}: {ck.found:,}/{ck.expected:,} "
            f"pages, {m.wall:6.2f} s, {ck.found / m.wall if m.wall else 0:7,.0f} pages/s, "
            f"{m.cpu * 1000 / max(ck.found, 1):6.2f} CPU-ms/page, {m.maxrss_kib / 1024:5.0f} MB"
            f"  [{status}]")
        if not ck.correct:
            say(f"      missing {ck.missing} (e.g. {ck.missing_sample[:2]}), extra {ck.extra}, "
                f"dupes {ck.dupes_out}/{ck.dupes_fetched} (e.g. {ck.dupes_sample[:3]}), "
                f"forbidden {ck.forbidden}, off-site {ck.offsite}")
    return res


# -- tables ---------------------------------------------------------------------
def throughput_table(results: list[Result], ref: Result | None) -> str:
    lines = [
        "| crawler | server | pages found/expected | dupes (output/fetched) | forbidden + "
        "off-site fetches | wall s | pages/s | CPU-ms/page | peak RSS MB | vs loopcrawl: "
        "CPU/page, wall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if not r.runs:
            lines.append(f"| {r.crawler} | {r.server} | {r.note} | | | | | | | |")
            continue
        ck = r.check
        found = f"{ck.found:,}/{ck.expected:,}" + (f" (+{ck.extra} extra)" if ck.extra else "")
        if ck.correct:
            found += " ✓"
        ratio = "1.0×, 1.0×" if r is ref else (
            f"{r.cpu_ms_per_page / ref.cpu_ms_per_page:.1f}×, {r.wall / ref.wall:.1f}×"
            if ref and ref.runs and ref.cpu_ms_per_page else "")
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.crawler}{note} | {r.server} | {found} | {ck.dupes_out}/{ck.dupes_fetched} | "
            f"{ck.forbidden} + {ck.offsite} | {r.wall:.2f} | {r.pages_per_s:,.0f} | "
            f"{r.cpu_ms_per_page:.2f} | {r.rss_mb:.0f} | {ratio} |")
    return "\n".join(lines)


def discovery_floor(depths: dict[str, int], latency_ms: float, concurrency: int) -> float:
    """A lower bound that also counts link discovery: pages at depth >= d cannot
    start before robots.txt and d earlier round trips, so for every d the crawl
    takes at least (d + 1) x latency + (pages at depth >= d) x latency / concurrency."""
    lat = latency_ms / 1000
    ds = sorted(depths.values())
    best = 0.0
    for i, d in enumerate(ds):
        if i and ds[i - 1] == d:
            continue
        best = max(best, (d + 1) * lat + (len(ds) - i) * lat / concurrency)
    return best


def latency_table(results: list[Result], latency_ms: float, concurrency: int,
                  discovery: float) -> str:
    lines = [
        "| crawler | pages found/expected | requests | floor s | wall s (process) | "
        "wall ÷ floor | crawl s (server: first request → last response) | crawl ÷ floor | "
        f"crawl ÷ discovery floor ({discovery:.2f} s) | CPU-ms/page |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if not r.runs:
            lines.append(f"| {r.crawler} | {r.note} | | | | | | | | |")
            continue
        ck = r.check
        floor = ck.requests * latency_ms / 1000 / concurrency
        mark = " ✓" if ck.correct else ""
        lines.append(
            f"| {r.crawler} | {ck.found:,}/{ck.expected:,}{mark} | {ck.requests:,} | {floor:.2f} | "
            f"{r.wall:.2f} | {r.wall / floor:.2f} | {r.span:.2f} | {r.span / floor:.2f} | "
            f"{r.span / discovery:.2f} | {r.cpu_ms_per_page:.2f} |")
    return "\n".join(lines)


# -- machine and versions ---------------------------------------------------------
def baseline_rss_mb() -> float:
    """Peak RSS of a process that only imports what a loopcrawl crawl imports."""
    code = ("import loopcrawl.cli, loopcrawl.core.engine, loopcrawl.net.fetcher, aiohttp, uvloop, "
            "selectolax.lexbor, ada_url, sys; sys.path.insert(0, sys.argv[1]); "
            "from measure import vm_hwm_kib; print(vm_hwm_kib('self'))")
    p = subprocess.run([sys.executable, "-c", code, str(HERE)], capture_output=True,
                       text=True, timeout=60)
    try:
        return int(p.stdout.strip()) / 1024
    except ValueError:
        return 0.0


def spread_note(r: Result) -> str:
    """How far apart the runs were: on a shared VM the same commit moves ±10%."""
    per_page = sorted(m.cpu * 1000 / r.pages for m in r.runs if r.pages)
    if len(per_page) < 2:
        return ""
    return (f"Spread: loopcrawl's {len(per_page)} runs ({r.server}) took "
            f"{per_page[0]:.2f}–{per_page[-1]:.2f} CPU-ms/page (median "
            f"{statistics.median(per_page):.2f}). The same commit moves this much from run to "
            "run on this shared VM, so compare commits with `--repeat-loopcrawl 5` or more, "
            "or by instructions per page (see below).")


def memory_note(r: Result, baseline_mb: float) -> str:
    """Peak RSS less the imports' share, per page crawled (issue 3 asks bytes per URL)."""
    ck = r.check
    seen = ck.found + ck.extra
    if not seen or not baseline_mb:
        return ""
    per = (r.rss_mb - baseline_mb) * 2**20 / seen
    return (f"loopcrawl's memory ({r.server}): peak RSS {r.rss_mb:.0f} MB, of which "
            f"{baseline_mb:.0f} MB is the interpreter with loopcrawl and its libraries "
            f"imported; the rest, {r.rss_mb - baseline_mb:.0f} MB over {seen:,} pages, is "
            f"≈ {per:,.0f} bytes per page crawled (seen set, queue, buffers and allocator "
            f"slack together).")


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}"


def loopcrawl_commit() -> str:
    """The commit of the loopcrawl being measured (``-dirty`` if its files differ)."""
    import loopcrawl

    pkg = Path(loopcrawl.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(pkg), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(pkg), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head or "unknown") + ("-dirty" if dirty else "")


def versions(cs: dict[str, Crawler], nginx: str | None) -> str:
    libs = ", ".join(f"{d} {_version(d)}" for d in ("aiohttp", "selectolax", "ada-url", "uvloop"))
    peers = ", ".join(f"{c.name} {c.version or c.unavailable or '-'}"
                      for c in cs.values() if c.key != "loopcrawl")
    return (f"Python {platform.python_version()}; loopcrawl {_version('loopcrawl')} "
            f"(commit {loopcrawl_commit()}) "
            f"({libs}); {peers}; nginx {nginx or 'not installed'}")


def replace_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) one ``## `` section of a Markdown file, leaving the rest
    (other people's sections) untouched. Re-reads the file just before writing."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    new = f"{heading}\n\n{body.strip()}\n"
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + new + (text[end:] if end >= 0 else "")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# -- main -------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20_000, help="item pages of the big site")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", choices=["loopcrawl", "scrapy", "crawlee"],
                    help="run only this crawler (repeatable)")
    ap.add_argument("--skip-peers", action="store_true", help="loopcrawl alone")
    ap.add_argument("--repeat", type=int, default=1, help="runs per crawler; medians reported")
    ap.add_argument("--repeat-loopcrawl", type=int, default=3,
                    help="runs of loopcrawl (at least --repeat): its runs are short, and a "
                         "median of several resists a busy machine")
    ap.add_argument("--server", choices=["auto", "nginx", "python", "both"], default="auto",
                    help="who serves the big crawl (auto: nginx when installed, and loopcrawl "
                         "also against the Python site)")
    ap.add_argument("--latency-pages", type=int, default=3000)
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--latency-concurrency", type=int, default=100)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--io-models", dest="io_models", action="store_true", default=None,
                    help="also run `loopcrawl bench --io-models` (default: on a full run)")
    ap.add_argument("--no-io-models", dest="io_models", action="store_false")
    ap.add_argument("--profile", action="store_true",
                    help="profile one loopcrawl crawl (py-spy if installed, else cProfile)")
    ap.add_argument("--instructions", dest="instructions", action="store_true", default=None,
                    help="count loopcrawl's instructions per page under valgrind's callgrind "
                         "(default: on a full run when valgrind is installed)")
    ap.add_argument("--no-instructions", dest="instructions", action="store_false")
    ap.add_argument("--write", dest="write", action="store_true", default=None,
                    help="write BENCHMARKS.md (default: on a full run)")
    ap.add_argument("--no-write", dest="write", action="store_false")
    ap.add_argument("--md", type=Path, default=ROOT / "BENCHMARKS.md",
                    help="the BENCHMARKS.md to update (docs/io-models.png goes beside it)")
    a = ap.parse_args(argv)
    full = not a.only and not a.skip_peers and a.pages == 20_000 and a.repeat >= 1
    write = full if a.write is None else a.write
    io_models = full if a.io_models is None else a.io_models

    def say(msg: str) -> None:
        print(msg, flush=True)

    def repeats(key: str) -> int:
        return max(a.repeat, a.repeat_loopcrawl) if key == "loopcrawl" else a.repeat

    started = time.time()
    cs = crawlers()
    chosen = a.only or (["loopcrawl"] if a.skip_peers else list(cs))
    for key in chosen:
        if key != "loopcrawl":
            ensure_peer(cs[key], say)
            if cs[key].unavailable:
                say(f"{cs[key].name}: {cs[key].unavailable}")
    ngx = nginx_version()
    use_nginx = a.server in ("nginx", "both") or (a.server == "auto" and ngx is not None)
    if use_nginx and ngx is None:
        say("nginx: not installed (apt-get install nginx); using the Python test site")
        use_nginx = False
    elif ngx is None:
        say("nginx: not installed; crawling the Python test site")
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="run-", dir=OUT)
    site = Site(a.pages, a.seed)
    forbidden = site.forbidden
    report: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": machine(),
                              "versions": versions(cs, ngx), "argv": sys.argv[1:]}
    say(f"machine: {report['machine']}\nversions: {report['versions']}")

    # -- the servers, and what they sustain ----------------------------------------
    sample = [f"/cat{j % 20}/item{j}.html" for j in range(0, a.pages, max(1, a.pages // 500))]
    capacity: dict[str, str] = {}
    files: StaticFiles | None = None
    if use_nginx:
        files = StaticFiles(a.pages, a.seed, free_port())
        atexit.register(files.remove)  # also on an error or Ctrl-C
        t = time.perf_counter()
        n = files.write()
        say(f"static copy: {n:,} files in {time.perf_counter() - t:.1f} s")
        with Nginx(files) as srv:
            capacity["nginx"] = _capacity(sample, srv.base_url)
        say(f"nginx {ngx} (1 worker) sustains {capacity['nginx']}")
    servers: list[tuple[str, Callable[[], Any], Expect]] = []
    if use_nginx:
        assert files is not None
        nginx_files = files
        servers.append(("nginx (static)", lambda: Nginx(nginx_files),
                        lambda base: set(site.expected(base, static=True))))
    if not use_nginx or a.server in ("auto", "both", "python"):
        with PythonSite(a.pages, a.seed) as srv:
            capacity["python"] = _capacity(sample, srv.base_url)
        say(f"Python test site sustains {capacity['python']}")
    report["capacity"] = capacity
    report["baseline_rss_mb"] = baseline_rss_mb()

    # -- the big crawl -----------------------------------------------------------------
    results: list[Result] = []
    say(f"\ncrawling the {a.pages:,}-page site ...")
    if not use_nginx or a.server in ("python", "both", "auto"):
        servers.append(("Python test site", lambda: PythonSite(a.pages, a.seed),
                        lambda base: set(site.expected(base))))
    primary = servers[0][0]
    for key in chosen:
        c = cs[key]
        for sname, make, expected in servers:
            if sname != primary and key != "loopcrawl":
                continue  # peers are compared on the primary server only
            if c.unavailable:
                results.append(Result(c.name, sname, [], [], [], note=c.unavailable))
                continue
            results.append(crawl_repeated(c, sname, make, expected, forbidden, 64, 8,
                                          repeats(key), workdir, say))
    ref = next((r for r in results if r.crawler == "loopcrawl" and r.server == primary
                and r.runs), None)
    table = throughput_table(results, ref)
    if ref is not None:
        table += "\n\n" + memory_note(ref, report["baseline_rss_mb"])
        table += "\n\n" + spread_note(ref)
    say("\n" + table)

    # -- the latency-bound crawl -----------------------------------------------------------
    lat_results: list[Result] = []
    if not a.skip_latency:
        lsite = Site(a.latency_pages, a.seed)
        say(f"\nlatency-bound: {a.latency_pages:,} pages, {a.latency_ms:g} ms per response, "
            f"concurrency {a.latency_concurrency} ...")
        for key in chosen:
            c = cs[key]
            if c.unavailable:
                lat_results.append(Result(c.name, "Python test site", [], [], [],
                                          note=c.unavailable))
                continue
            lat_results.append(crawl_repeated(
                c, "Python test site",
                lambda: PythonSite(a.latency_pages, a.seed, a.latency_ms),
                lambda base: set(lsite.expected(base)), lsite.forbidden,
                a.latency_concurrency, a.latency_concurrency, repeats(key), workdir, say))
        discovery = discovery_floor(lsite.expected(), a.latency_ms, a.latency_concurrency)
        lat_table = latency_table(lat_results, a.latency_ms, a.latency_concurrency, discovery)
        say("\n" + lat_table)

    # -- instructions per page -------------------------------------------------------------
    want_ir = (full and shutil.which("valgrind") is not None) if a.instructions is None \
        else a.instructions
    if want_ir and ref is not None:
        ir = instructions_per_page(cs["loopcrawl"], servers[0][1], workdir, say)
        if ir:
            table += "\n\n" + ir
            say("\n" + ir)

    # -- profile ----------------------------------------------------------------------------
    profile_text = ""
    if a.profile:
        profile_text = profile_loopcrawl(cs["loopcrawl"], servers[0][1], workdir, say)
        say("\n" + profile_text)

    report["throughput"] = [_result_json(r) for r in results]
    report["latency"] = [_result_json(r) for r in lat_results]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"results-{stamp}.json").write_text(json.dumps(report, indent=2))
    say(f"\nresults: {(OUT / f'results-{stamp}.json').relative_to(ROOT)}  "
        f"(outputs and logs: {Path(workdir).relative_to(ROOT)})")

    if write:
        shown = [x for i, x in enumerate(sys.argv[1:]) if x != "--md" and not (
            i and sys.argv[i] == "--md") and not x.startswith("--md=")]
        cmd = "make bench" if not shown else "python benchmarks/run.py " + " ".join(shown)
        body = markdown(report, table, lat_table if lat_results else "", a, primary, cs)
        replace_section(a.md, SECTION, body.replace("{cmd}", cmd.strip()))
        say("BENCHMARKS.md: section updated")
    if io_models:
        run_io_models(write, say, a.md)
    say(f"done in {time.time() - started:.0f} s")
    incorrect = [r for r in results + lat_results if r.runs and not r.check.correct
                 and r.crawler == "loopcrawl"]
    return 1 if incorrect else 0


def _capacity(paths: list[str], base_url: str) -> str:
    got = wrk_rate(paths, base_url)
    if got is not None:
        rate, how = got
        return f"{rate:,.0f} requests/s ({how}, cycling through {len(paths)} pages)"
    rate = aiohttp_rate([base_url + p for p in paths])
    return (f"≥ {rate:,.0f} requests/s (aiohttp load loop, 64 connections, 3 s; the client "
            "shares the CPU, so this is a lower bound)")


def _result_json(r: Result) -> dict[str, Any]:
    d: dict[str, Any] = {"crawler": r.crawler, "server": r.server, "note": r.note,
                         "runs": [asdict(m) | {"stderr_tail": m.stderr_tail[-300:]} for m in r.runs],
                         "checks": [asdict(c) for c in r.checks], "spans": r.spans}
    if r.runs:
        d |= {"wall": r.wall, "cpu": r.cpu, "rss_mb": r.rss_mb, "pages": r.pages,
              "pages_per_s": r.pages_per_s, "cpu_ms_per_page": r.cpu_ms_per_page}
    return d


def markdown(report: dict[str, Any], table: str, lat_table: str, a: argparse.Namespace,
             primary: str, cs: dict[str, Crawler]) -> str:
    names = {"nginx": "nginx (1 worker)", "python": "the Python test site"}
    cap = "; ".join(f"{names.get(k, k)} sustains {v}" for k, v in report["capacity"].items())
    parts = [
        f"Measured {report['date']} on {report['machine']}.",
        f"Versions: {report['versions']}.",
        "Command: `{cmd}`.",
        "",
        f"### Throughput: the {a.pages:,}-page test site, no latency",
        "",
        table,
        "",
        f"Servers, each in its own process and never counted in the crawler's CPU: {cap}. "
        "The primary server is " + primary + ("; nginx serves the `--write` static copy, which "
        "has no tag pages or `/go/` redirects (a file server cannot answer those), so its "
        "expected set is `Site.expected(static=True)`." if "nginx" in primary else "."),
        "",
        f"How it is measured: loopcrawl is run {max(a.repeat, a.repeat_loopcrawl)} times and "
        f"each peer {a.repeat} time(s); each value is the median over the runs. "
        "Each crawler is a subprocess, measured with `os.wait4`: wall is "
        "spawn to exit (interpreter start-up and imports included), CPU is user + sys of the "
        "crawler process (and any children it waited for), peak RSS is the sum of the "
        "peaks (`VmHWM`, sampled every 10 ms) of its processes (not `ru_maxrss`, which "
        "Linux carries across exec from the benchmark process that spawned it). "
        "pages/s and CPU-ms/page divide by the pages found. Correctness comes first: "
        "pages found are the final URLs of the 200 records in the crawler's JSONL output, "
        "checked against the site's ground truth (`Site.expected`); duplicates are counted "
        "both in the output and in the server's request log (a URL answered twice, "
        "robots.txt aside); forbidden fetches are requests robots.txt disallows, and "
        "off-site fetches are requests to the second host (127.0.0.2) the pages link to, "
        "both from the server's log. ✓ marks a crawl with none of these faults.",
        "",
        "Equivalent settings: robots.txt obeyed, same host:port only, every `<a href>` "
        "followed, fragments dropped, duplicates filtered, JSONL output, no retries, no "
        "autothrottle, no cookies, log level WARNING. Concurrency: 64 requests in flight, "
        "8 per host (loopcrawl's and Scrapy's defaults; on this one-host site, 8 in flight); "
        "Crawlee has no per-host limit, so its concurrency is pinned to 8 "
        "(min = desired = max, so the autoscaler cannot wander). loopcrawl runs "
        "`loopcrawl crawl URL -o out.jsonl --quiet --retries 0`; the peers' spiders are in "
        "`benchmarks/peers/` (Scrapy: a plain `Spider` with `response.css`, its start "
        "request sent through the dupe filter — by default Scrapy exempts it and fetches "
        "the home page twice; Crawlee: `ParselCrawler` with "
        "`enqueue_links(strategy=\"same-origin\")` and in-memory storage).",
    ]
    faults = fault_notes(report)
    if faults:
        parts += ["", "Faults found by the check: " + faults]
    busy = [f"{r['crawler']} ({r['server']}{', latency-bound' if part == 'latency' else ''}): "
            f"{max(m['others_cpu'] / m['wall'] for m in r['runs']):.0%}"
            for part in ("throughput", "latency") for r in report.get(part, [])
            if r["runs"] and max(m["others_cpu"] / m["wall"] for m in r["runs"]) > 0.1]
    if busy:
        parts += ["", "This machine was shared: other processes (not the crawler, not the "
                  "server) used this share of a core during some crawls, so their wall time "
                  "and pages/s are pessimistic; CPU-ms/page is affected much less. "
                  + "; ".join(busy) + "."]
    if lat_table:
        parts += [
            "",
            f"### Latency-bound: {a.latency_pages:,} pages, {a.latency_ms:g} ms per response, "
            f"concurrency {a.latency_concurrency}",
            "",
            lat_table,
            "",
            f"The Python test site with `--latency-ms {a.latency_ms:g}`; every crawler with "
            f"{a.latency_concurrency} requests in flight ({a.latency_concurrency} per host). "
            "The floor is requests × latency ÷ concurrency, with requests counted in the "
            "server's log (robots.txt, the 404s and the redirects included). *Wall* is the "
            "crawler process from spawn to exit; *crawl* is what the server saw, from the "
            "first request's arrival to the last response, so interpreter start-up is out. "
            "Neither can reach 1.00: a crawl starts from one page and must fetch robots.txt "
            "and then the home page before it knows more than one URL. The *discovery "
            "floor* counts that: pages at link depth ≥ d cannot start before robots.txt and "
            "d earlier round trips, so the crawl takes at least (d + 1) × latency + (pages at "
            "depth ≥ d) × latency ÷ concurrency, for the worst d.",
        ]
    return "\n".join(parts)


def fault_notes(report: dict[str, Any]) -> str:
    """One sentence per crawl that failed the check, with examples from the log."""
    notes = []
    for part, label in (("throughput", "throughput"), ("latency", "latency-bound")):
        for r in report.get(part, []):
            for ck in r["checks"][:1]:
                bits = []
                if ck["dupes_fetched"]:
                    bits.append(f"{ck['dupes_fetched']} URLs fetched twice (e.g. "
                                + ", ".join(f"`{p}`" for p in ck["dupes_sample"][:3]) + ")")
                if ck["missing"]:
                    bits.append(f"{ck['missing']} expected pages missing (e.g. "
                                + ", ".join(f"`{u}`" for u in ck["missing_sample"][:2]) + ")")
                for key, what in (("extra", "unexpected pages"), ("dupes_out", "duplicate "
                                  "output records"), ("forbidden", "fetches robots.txt "
                                  "forbids"), ("offsite", "off-site fetches")):
                    if ck[key]:
                        bits.append(f"{ck[key]} {what}")
                if bits:
                    notes.append(f"{r['crawler']} ({label}, {r['server']}): " + "; ".join(bits)
                                 + ".")
    return " ".join(notes)


def instructions_per_page(c: Crawler, make_server: Callable[[], Any], workdir: str,
                          say: Callable[[str], None], pages: int = 3000) -> str:
    """loopcrawl's user-space instructions per page (callgrind): a crawl of
    ``pages`` less a crawl of one (start-up), divided by the pages. Unlike CPU
    time on a shared VM, this figure does not move between runs."""
    exe = shutil.which("valgrind")
    if exe is None:
        return "Instructions per page: valgrind is not installed, not measured."
    say(f"\ninstructions per page: callgrind, {pages:,} pages and 1 page ...")
    counts: dict[int, tuple[int, int]] = {}
    for n in (1, pages):
        out = os.path.join(workdir, f"ir-{n}.jsonl")
        trace = os.path.join(workdir, f"callgrind-{n}.out")
        with make_server() as server:
            cmd = [*c.command(server.base_url, out, 64, 8), "--max-pages", str(n)]
            p = subprocess.run([exe, "--tool=callgrind", f"--callgrind-out-file={trace}", *cmd],
                               capture_output=True, text=True, timeout=CRAWL_TIMEOUT)
        total = field_of(trace, "summary:")
        if p.returncode != 0 or not total:
            return f"Instructions per page: callgrind failed ({p.stderr.strip()[-200:]})."
        with open(out) as fh:
            counts[n] = (total, sum(1 for _ in fh))
    (t1, n1), (tn, nn) = counts[1], counts[pages]
    per = (tn - t1) / max(1, nn - n1)
    return (f"Instructions per page (callgrind, user space): {per / 1000:,.0f}k, from a "
            f"{nn:,}-page crawl less a {n1}-page one (start-up: {t1 / 1e9:.2f} billion). CPU "
            "time moves ±10% between runs on a shared VM; this does not, so compare commits "
            "by it.")


def profile_loopcrawl(c: Crawler, make_server: Callable[[], Any], workdir: str,
                      say: Callable[[str], None]) -> str:
    """One loopcrawl crawl under a profiler: the top functions by own time."""
    out = os.path.join(workdir, "profile.jsonl")
    with make_server() as server:
        cmd = c.command(server.base_url, out, 64, 8)
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if os.access(spy, os.X_OK):
            raw = os.path.join(workdir, "profile.txt")
            p = subprocess.run([spy, "record", "-r", "500", "-f", "raw", "-o", raw, "--",
                                *cmd], capture_output=True, text=True, timeout=CRAWL_TIMEOUT)
            if p.returncode == 0 and os.path.exists(raw):
                return _top_from_collapsed(raw)
            say(f"py-spy failed ({p.stderr.strip()[-200:]}); using cProfile")
        prof = os.path.join(workdir, "profile.pstats")
        args = cmd[cmd.index("crawl"):]
        subprocess.run([sys.executable, "-m", "cProfile", "-o", prof, "-m", "loopcrawl", *args],
                       capture_output=True, timeout=CRAWL_TIMEOUT)
    import pstats

    st = pstats.Stats(prof)
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:10]  # type: ignore[attr-defined]
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    lines = ["| own time % | function |", "| ---: | --- |"]
    for (fname, line, func), v in rows:
        lines.append(f"| {100 * v[2] / total:.1f} | {func} ({Path(fname).name}:{line}) |")
    return "cProfile, top 10 by own time:\n" + "\n".join(lines)


def _top_from_collapsed(path: str) -> str:
    """Own time per function from py-spy's collapsed stacks (leaf frame = own time)."""
    import re
    from collections import Counter

    own: Counter[str] = Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not n.isdigit():
                continue
            leaf = re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])  # by function, not line
            own[leaf] += int(n)
            total += int(n)
    lines = ["| own samples % | function |", "| ---: | --- |"]
    for func, n in own.most_common(10):
        lines.append(f"| {100 * n / total:.1f} | `{func}` |")
    return ("py-spy (500 Hz; time in C extensions counts as the Python function that "
            "called it), top 10 functions by own time:\n" + "\n".join(lines))


def run_io_models(write: bool, say: Callable[[str], None], md: Path) -> None:
    """`loopcrawl bench --io-models` with its defaults; the table into BENCHMARKS.md."""
    from io_models import findings, format_table, write_chart
    from io_models import run_io_models as measure_models

    say("\nIO models (loopcrawl bench --io-models) ...")
    pages, latency = 2000, 50.0
    results = measure_models(pages=pages, latency_ms=latency, echo=say)
    png = md.parent / "docs" / "io-models.png"
    write_chart(results, str(png), latency)
    table = format_table(results, latency)
    say("\n" + table + f"\nchart: {png}")
    if write:
        body = io_models_markdown(table + "\n\nWhat it shows, in this run:\n\n"
                                  + findings(results, latency), pages, latency)
        replace_section(md, IO_SECTION, body)


def io_models_markdown(table: str, pages: int, latency_ms: float) -> str:
    return "\n".join([
        f"Measured {dt.date.today().isoformat()} on {machine()}; Python "
        f"{platform.python_version()}. Command: `loopcrawl bench --io-models` (defaults: "
        f"{pages:,} pages, `--latency-ms {latency_ms:g}`, K in 1, 4, 16, 64, 256), also run "
        "by `make bench`.",
        "",
        "![pages/s, CPU and memory of the four IO models](docs/io-models.png)",
        "",
        table,
        "",
        "The same work four ways: fetch the site's pages and parse each for its title and "
        "links, against the test site (in its own process) answering every request after "
        f"{latency_ms:g} ms. *sequential*: blocking `http.client`, one page after another. "
        "*threads*: K threads, each blocking on its own request. *asyncio*: loopcrawl's "
        "engine, one event loop with K coroutines. *processes*: loopcrawl's `--workers P` "
        "(one per core, at most K): P worker processes, each an event loop, fetch and "
        "parse, the process that started them keeps the queue and the K requests in "
        "flight. Each run is a subprocess of its own (CPU and peak RSS are that model's "
        "alone; for processes, the largest worker's peak counted for each) and lasts "
        "about 5 s at most: slow models fetch fewer pages (100 at least), and the rate is "
        "pages ÷ wall. *of ideal* is pages/s against K ÷ latency, the most K requests in "
        "flight can give.",
    ])


if __name__ == "__main__":
    sys.exit(main())
