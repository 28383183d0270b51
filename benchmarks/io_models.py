"""``loopcrawl bench --io-models`` (and ``make bench``): the lesson behind loopcrawl, measured.

The same work (fetch N pages of the test site, parse each for its title and
links) done four ways, against a server that answers every request after
``latency_ms``, as slow real servers do:

* ``sequential`` blocking IO, one page after another (``http.client``): each
  page costs a full round trip, so pages/s = 1 / latency at best.
* ``threads``  K OS threads, each blocking on its own request: the waits
  overlap, at the price of a stack and a kernel thread per request in flight,
  and of the GIL hand-offs between them.
* ``asyncio``  one event loop with K coroutines: loopcrawl's own engine. The
  waits overlap on one thread; the CPU left is the parsing.
* ``processes`` loopcrawl's ``--workers P`` (one per core): P worker
  processes, each an event loop, fetch and parse; the process that started
  them keeps the queue and the K requests in flight.

The site runs in a process of its own with every page rendered up front, so
that serving a page costs a string copy and the server is not what is
measured. Every run is a subprocess of its own, so CPU time and peak memory
belong to that model alone, and waits (bounded) for the machine to be quiet. Runs are capped at a few seconds each (a sequential crawl
of 1,000 pages at 50 ms would take 50 s); the rate is pages / wall time of
what was fetched, so a capped run's pages/s is directly comparable.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Loaded by path (``loopcrawl bench --io-models``) and run as a script: its
# neighbours are importable either way.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import cpu_busy_seconds, wait_quiet
from servers import tree_cpu_seconds

__all__ = ["MODELS", "RunResult", "findings", "format_table", "run_io_models", "write_chart"]

MODELS = ("sequential", "threads", "asyncio", "processes")
DEFAULT_CONCURRENCY = (1, 4, 16, 64, 256)
_RUN_TIMEOUT = 300.0  # seconds: no single run may take longer than this
BUSY = 0.25  # a run during which other processes used more than this many cores is marked


@dataclass(slots=True)
class RunResult:
    """One model at one concurrency: what it fetched, in how long, at what cost."""

    model: str
    concurrency: int
    processes: int
    pages: int  # pages requested
    ok: int  # pages fetched with status 200 and parsed
    wall: float  # seconds, from the first request to the last response
    cpu: float  # user + sys seconds of the run (all of its processes)
    rss_mb: float  # peak resident memory, summed over the run's processes
    rss_added_mb: float = 0.0  # rss_mb less the process's resident memory before the run
    background: float = 0.0  # cores used by other processes during the run (not the server)
    error: str | None = None

    @property
    def pages_per_s(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_ms_per_page(self) -> float:
        return self.cpu * 1000 / self.ok if self.ok else 0.0


# -- the work itself: one page -------------------------------------------------
def _parse(url: str, body: bytes) -> int:
    """What every model does with a page: title + links, resolved and deduped."""
    from loopcrawl.links import extract
    from loopcrawl.urls import Resolver

    page = extract(body)
    resolve = Resolver(url).resolve
    return len({u for h in page.hrefs if (u := resolve(h)) is not None})


class _BlockingClient:
    """A keep-alive ``http.client`` connection per thread (blocking IO)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def get(self, url: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        for attempt in (0, 1):  # once more on a keep-alive connection the server closed
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
                self._local.conn = conn
            try:
                conn.request("GET", path, headers={"User-Agent": "loopcrawl-bench"})
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _fetch_and_parse(client: _BlockingClient, url: str) -> bool:
    try:
        status, body = client.get(url)
    except (http.client.HTTPException, OSError):
        return False
    if status != 200:
        return False
    _parse(url, body)
    return True


def _run_sequential(urls: Sequence[str], timeout: float) -> int:
    client = _BlockingClient(timeout)
    return sum(_fetch_and_parse(client, u) for u in urls)


def _run_threads(urls: Sequence[str], k: int, timeout: float) -> int:
    client = _BlockingClient(timeout)
    ok = 0
    with ThreadPoolExecutor(max_workers=k, thread_name_prefix="fetch") as pool:
        todo = iter(urls)
        pending = {pool.submit(_fetch_and_parse, client, u) for u in _take(todo, k)}
        while pending:
            done, pending = wait(pending, timeout=timeout * 2, return_when=FIRST_COMPLETED)
            if not done:
                raise TimeoutError("a thread did not answer in time")
            for f in done:
                ok += f.result()
            pending |= {pool.submit(_fetch_and_parse, client, u) for u in _take(todo, len(done))}
    return ok


def _take(it: object, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))  # type: ignore[call-overload]
        except StopIteration:
            break
    return out


def _run_asyncio(urls: Sequence[str], k: int, timeout: float, workers: int = 1) -> int:
    """loopcrawl's engine, seeded with the URL list; links parsed, not followed.
    With ``workers`` > 1, its ``--workers`` path."""
    from loopcrawl.core.runner import crawl
    from loopcrawl.settings import Settings

    settings = Settings(seeds=tuple(urls), concurrency=k, per_host=k, depth=0,
                        obey_robots=False, retries=0, timeout=timeout, quiet=True,
                        workers=workers)
    return crawl(settings).ok


def _one_run(spec: dict[str, object]) -> dict[str, object]:
    """Run one model in this (fresh) process and measure it."""
    model = str(spec["model"])
    urls: list[str] = list(spec["urls"])  # type: ignore[call-overload]
    k = int(spec["k"])  # type: ignore[call-overload]
    procs = int(spec["procs"])  # type: ignore[call-overload]
    timeout = float(spec["timeout"])  # type: ignore[arg-type]
    # Imports are not part of the measurement.
    import loopcrawl.core.engine
    import loopcrawl.links  # noqa: F401

    rss0_kib = _current_rss_kib()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    children_kib = 0.0
    if model == "sequential":
        ok = _run_sequential(urls, timeout)
    elif model == "threads":
        ok = _run_threads(urls, k, timeout)
    elif model == "asyncio":
        ok = _run_asyncio(urls, k, timeout)
    elif model == "processes":
        ok = _run_asyncio(urls, k, timeout, workers=procs) if procs > 1 else \
            _run_asyncio(urls, k, timeout)
        # The workers ended and were reaped: their peak is RUSAGE_CHILDREN's,
        # the largest one's, counted for each.
        children_kib = procs * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss \
            if procs > 1 else 0.0
    else:
        raise ValueError(f"unknown model {model!r}")
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
           + c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
    rss_kib = _peak_rss_kib() + children_kib
    return {"ok": ok, "wall": wall, "cpu": cpu, "rss_mb": rss_kib / 1024,
            "rss_added_mb": (rss_kib - rss0_kib) / 1024}


def _peak_rss_kib() -> float:
    """This process's peak resident memory in KiB (Linux VmHWM).

    Not ``ru_maxrss``: Linux carries that across exec, so a child started by a
    big parent would report the parent's peak as its own.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _current_rss_kib() -> float:
    """Resident memory now (Linux /proc; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# -- the sweep ------------------------------------------------------------------
def _children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _measure(model: str, urls: list[str], k: int, procs: int, timeout: float,
             server_pid: int = 0) -> RunResult:
    """Run one model in a subprocess (its own CPU and memory), bounded in time.

    Also notes how much CPU everything else on the machine (not the run, not the
    server) used meanwhile: a run that had to share its cores is marked.
    """
    spec = {"model": model, "urls": urls, "k": k, "procs": procs, "timeout": timeout}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    res = RunResult(model, k, procs, len(urls), 0, 0.0, 0.0, 0.0)
    b0, c0, t0 = cpu_busy_seconds(), _children_cpu_seconds(), time.monotonic()
    s0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    try:
        p = subprocess.run([sys.executable, __file__, fh.name],
                           capture_output=True, text=True, timeout=_RUN_TIMEOUT)
        busy = cpu_busy_seconds() - b0 - (_children_cpu_seconds() - c0)
        if server_pid:
            busy -= tree_cpu_seconds(server_pid) - s0
        res.background = max(0.0, busy) / max(time.monotonic() - t0, 1e-9)
        if p.returncode != 0:
            res.error = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            return res
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        res.error = f"timed out after {_RUN_TIMEOUT:g} s"
        return res
    finally:
        os.unlink(fh.name)
    res.ok, res.wall, res.cpu, res.rss_mb = out["ok"], out["wall"], out["cpu"], out["rss_mb"]
    res.rss_added_mb = out["rss_added_mb"]
    return res


def plan(pages: int, latency_ms: float, concurrency: Sequence[int], processes: int,
         seconds_per_run: float, min_pages: int = 100) -> list[tuple[str, int, int, int]]:
    """(model, K, processes, pages) for each run: pages capped so that a run
    lasts about ``seconds_per_run`` at the latency floor."""
    def cap(k: int) -> int:
        if latency_ms <= 0:
            return pages
        return min(pages, max(min_pages, math.ceil(seconds_per_run * k * 1000 / latency_ms)))

    runs = [("sequential", 1, 1, cap(1))]
    for k in sorted(set(concurrency)):
        runs.append(("threads", k, 1, cap(k)))
        runs.append(("asyncio", k, 1, cap(k)))
        p = max(1, min(processes, k))
        runs.append(("processes", k, p, cap(k)))
    return runs


class _SiteProcess:
    """The test site in a child process (``python io_models.py --serve``)."""

    def __init__(self, pages: int, seed: int, latency_ms: float) -> None:
        self.args = [str(pages), str(seed), str(latency_ms)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def __enter__(self) -> _SiteProcess:
        import select

        self.proc = subprocess.Popen([sys.executable, __file__, "--serve",
                                      *self.args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError("the test site process did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def _serve(pages: int, seed: int, latency_ms: float) -> None:
    """Serve the test site with every page pre-rendered, until SIGTERM/SIGINT."""
    import asyncio
    import signal

    from loopcrawl.core.engine import new_event_loop
    from loopcrawl.testsite import Site, TestSiteServer

    site = Site(pages, seed)
    site.CACHE_SIZE = 1 << 30  # keep every page: the cache holds host-free templates
    for url in site.expected("http://127.0.0.1:1"):
        site.response(url.split("127.0.0.1:1", 1)[1], "127.0.0.1:1")

    async def main() -> None:
        server = TestSiteServer(site, port=0, latency_ms=latency_ms, log=False)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await server.start()
        print(server.port, flush=True)
        try:
            await asyncio.wait_for(stop.wait(), 3600)
        except TimeoutError:
            pass
        finally:
            await server.stop()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


def run_io_models(
    pages: int = 2000,
    latency_ms: float = 50.0,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    processes: int | None = None,
    seconds_per_run: float = 5.0,
    seed: int = 0,
    timeout: float = 30.0,
    quiet_wait: float = 10.0,
    echo: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Serve the test site in its own process and measure every model on it."""
    from loopcrawl.testsite import Site
    from loopcrawl.urls import fingerprint

    procs = processes or os.cpu_count() or 1
    say = echo or (lambda _m: None)
    with _SiteProcess(pages, seed, latency_ms) as server:
        urls = sorted(Site(pages, seed).expected(server.base_url), key=fingerprint)
        say(f"test site: {server.base_url}/ ({len(urls):,} crawlable pages, "
            f"{latency_ms:g} ms per response, pre-rendered, in its own process)")
        results = []
        for model, k, p, n in plan(len(urls), latency_ms, concurrency, procs, seconds_per_run):
            if quiet_wait > 0:
                wait_quiet(quiet_wait, sample=0.25)
            r = _measure(model, urls[:n], k, p, timeout, server.pid)
            say(f"  {model:<10} K={k:<4} P={p}  {r.ok:>5,}/{n:<5,} pages  "
                f"{r.pages_per_s:8,.0f} pages/s  {r.cpu_ms_per_page:6.2f} CPU-ms/page  "
                f"{r.rss_mb:6.1f} MB" + (f"  ERROR {r.error}" if r.error else "")
                + (f"  (other processes used {r.background:.0%} of a core meanwhile)"
                   if r.background > BUSY else ""))
            results.append(r)
    return results


def format_table(results: Sequence[RunResult], latency_ms: float) -> str:
    """A Markdown table; 'of ideal' is pages/s against K ÷ latency, the most
    that K requests in flight can give."""
    head = ("| model | K | procs | pages | wall s | pages/s | of ideal | CPU s | "
            "CPU-ms/page | peak RSS MB | RSS added MB |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ideal = r.concurrency * 1000 / latency_ms if latency_ms > 0 else 0
        frac = f"{r.pages_per_s / ideal:.0%}" if ideal else "-"
        if r.error:
            lines.append(f"| {r.model} | {r.concurrency} | {r.processes} | {r.pages} | "
                         f"error: {r.error} | | | | | | |")
            continue
        mark = " \\*" if r.background > BUSY else ""
        lines.append(
            f"| {r.model}{mark} | {r.concurrency} | {r.processes} | {r.ok:,}/{r.pages:,} | "
            f"{r.wall:.2f} | {r.pages_per_s:,.0f} | {frac} | {r.cpu:.2f} | "
            f"{r.cpu_ms_per_page:.2f} | {r.rss_mb:.1f} | {r.rss_added_mb:.1f} |")
    if any(r.background > BUSY for r in results):
        lines.append(f"\n\\* other processes on this machine used more than {BUSY:.0%} of a "
                     "core during this run: its wall time (and so pages/s) is not its own.")
    return "\n".join(lines)


def write_chart(results: Sequence[RunResult], path: str, latency_ms: float,
                title: str | None = None) -> None:
    """pages/s, CPU per page and peak memory against concurrency, one line per model."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if not r.error and r.ok]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    styles = {"sequential": ("k", "s"), "threads": ("tab:orange", "o"),
              "asyncio": ("tab:blue", "D"), "processes": ("tab:green", "^")}
    panels = [
        (axes[0], "pages/s", lambda r: r.pages_per_s, True),
        (axes[1], "CPU milliseconds per page", lambda r: r.cpu_ms_per_page, False),
        (axes[2], "peak RSS, MB (all processes)", lambda r: r.rss_mb, False),
    ]
    ks = sorted({r.concurrency for r in ok}) or [1]
    for ax, label, get, logy in panels:
        for model in MODELS:
            rs = sorted((r for r in ok if r.model == model), key=lambda r: r.concurrency)
            if not rs:
                continue
            color, marker = styles[model]
            ax.plot([r.concurrency for r in rs], [get(r) for r in rs], color=color,
                    marker=marker, label=model, linestyle="none" if len(rs) == 1 else "-")
        if logy and latency_ms > 0:
            ax.plot(ks, [k * 1000 / latency_ms for k in ks], color="grey", linestyle=":",
                    label=f"ideal: K ÷ {latency_ms:g} ms")
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("concurrency K (requests in flight)")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=9)
    fig.suptitle(title or f"The same crawl four ways: test site, {latency_ms:g} ms per response")
    fig.tight_layout()
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def findings(results: Sequence[RunResult], latency_ms: float) -> str:
    """What the numbers say, in words, from the numbers of this run."""
    ok = {(r.model, r.concurrency): r for r in results if not r.error and r.ok}
    out: list[str] = []
    seq = ok.get(("sequential", 1))
    if seq and latency_ms > 0:
        busy = seq.cpu / seq.wall if seq.wall else 0
        out.append(
            f"- Blocking and sequential: {seq.pages_per_s:,.0f} pages/s, "
            f"{seq.pages_per_s * latency_ms / 1000:.0%} of the 1 ÷ {latency_ms:g} ms it can "
            f"reach at best; the CPU was busy {busy:.0%} of the time and waited the rest.")
    ks = sorted({k for (m, k) in ok if m == "asyncio"})
    if ks and latency_ms > 0:
        bound = [k for k in ks
                 if ok[("asyncio", k)].pages_per_s < 0.7 * k * 1000 / latency_ms]
        if bound:
            k = bound[0]
            r = ok[("asyncio", k)]
            out.append(
                f"- Overlapping the waits multiplies the rate by K while the wait is the limit; "
                f"from K = {k} on, one event loop reaches {r.pages_per_s:,.0f} pages/s, "
                f"{r.pages_per_s * latency_ms / 1000 / k:.0%} of K ÷ latency: the CPU "
                f"({r.cpu_ms_per_page:.2f} ms per page, {r.cpu / r.wall:.0%} of a core) is "
                "the limit now, not the network.")
    top = max(ks) if ks else 0  # 0: no K measured, so none of these is found
    a, t, p = (ok.get((m, top)) for m in ("asyncio", "threads", "processes"))
    if a and t:
        out.append(
            f"- At K = {top}, {top} threads gave {t.pages_per_s:,.0f} pages/s for "
            f"{t.cpu_ms_per_page:.2f} CPU-ms per page and {t.rss_added_mb:.0f} MB of memory "
            f"added; one event loop gave {a.pages_per_s:,.0f} pages/s for "
            f"{a.cpu_ms_per_page:.2f} CPU-ms and {a.rss_added_mb:.0f} MB. Threads pay for "
            "their stacks and for handing the GIL between them; coroutines only for a "
            "small object each.")
    if a and p:
        more = p.pages_per_s / a.pages_per_s if a.pages_per_s else 0
        out.append(
            f"- {p.processes} processes, each an event loop: {p.pages_per_s:,.0f} pages/s "
            f"({more:.2f}× one loop) for {p.rss_mb - a.rss_mb:+.0f} MB. A second process "
            "pays off once one loop is CPU-bound, and only with a free core: on this "
            f"{os.cpu_count()}-core machine the test site's own process needs one too.")
    return "\n".join(out)


def results_json(results: Sequence[RunResult]) -> list[dict[str, object]]:
    """Plain dicts, with the derived rates, for machine-readable output."""
    return [asdict(r) | {"pages_per_s": r.pages_per_s, "cpu_ms_per_page": r.cpu_ms_per_page}
            for r in results]


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:  # the site (_SiteProcess)
    _serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
elif __name__ == "__main__":  # one measured run, in its own process (see _measure)
    with open(sys.argv[1]) as fh:
        _spec = json.load(fh)
    with contextlib.redirect_stdout(sys.stderr):
        _out = _one_run(_spec)
    print(json.dumps(_out))
