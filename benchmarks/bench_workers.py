#!/usr/bin/env python3
"""--workers N measured: pages/s and CPU per page with 1 and 2 worker processes.

The 20,000-page static test site is served by nginx (one worker process,
**uncompressed**: with gzip, nginx alone spends ~0.2 ms of CPU a page and caps
any speed-up on a 2-core machine), and crawled with ``--concurrency 128
--per-host 128`` so politeness is not the limit, the one-process crawl and
``--workers 2`` in turn, ``--repeat`` rounds. CPU comes from ``os.wait4``
(the crawl and the workers it reaped); the workers' own share (each one's
CPU over the requests it was sent), the messages and bytes between processes
come from the crawl's ``--stats`` JSON. The coordinator's CPU per page is the
cost of coordination itself. Pages/s are only comparable on a quiet machine:
the CPU other processes used meanwhile is recorded with the figures, and before each crawl
``--wait-quiet S`` waits up to S seconds (default 120) until other processes
use under 15% of a core (``measure.wait_quiet``). The package's bytecode is written
first (``compile_package``), so no process compiles its sources as it starts.

Then the latency-bound crawl (3,000 pages, 100 ms a response, concurrency
100) with ``--workers 2``: wall time of the crawl against its floor
(requests × 100 ms ÷ 100).

    python benchmarks/bench_workers.py            # print the table
    python benchmarks/bench_workers.py --write    # and update BENCHMARKS.md (~4 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from bench_state import write_section
from measure import cpu_busy_seconds, run_measured, wait_quiet
from servers import Nginx, StaticFiles, free_port, nginx_version

SECTION = "## Worker processes (benchmarks/bench_workers.py)"


def crawl(url: str, workers: int, tmp: str, tag: str, *extra: str) -> dict[str, float]:
    out, stats = Path(tmp) / f"{tag}.jsonl", Path(tmp) / f"{tag}.json"
    cmd = [sys.executable, "-m", "loopcrawl", "crawl", url, "-O", str(out), "--quiet",
           "--retries", "0", "--workers", str(workers), "--stats", str(stats), *extra]
    m = run_measured(cmd, timeout=900, log_path=str(Path(tmp) / f"{tag}.log"))
    if m.returncode != 0:
        raise SystemExit(f"crawl failed ({m.returncode}): {m.stderr_tail}")
    st = json.loads(stats.read_text())
    pages = st["records"]
    w = st.get("workers") or {}
    cpu = m.user + m.sys
    worker_cpu = float(w.get("cpu_s", 0.0))
    # Each worker's CPU over the requests it was sent; the worst one is reported.
    each = [c * 1000 / n for c, n in zip(w.get("cpu_s_each", []), w.get("requests_each", []),
                                          strict=True) if n]
    return {"pages": pages, "wall": m.wall, "duration": st["duration_s"],
            "cpu_ms": cpu * 1000 / pages, "coord_ms": (cpu - worker_cpu) * 1000 / pages,
            "worker_ms": max(each, default=0.0),
            "msgs_out": w.get("messages_out", 0) / pages,
            "msgs_in": w.get("messages_in", 0) / pages,
            "frames": (w.get("frames_out", 0) + w.get("frames_in", 0)) / pages,
            "bytes_out": w.get("bytes_out", 0) / pages,
            "bytes_in": w.get("bytes_in", 0) / pages, "maxrss_mb": m.maxrss_kib / 1024,
            "cpu_s": cpu}


def compile_package() -> None:
    """Write loopcrawl's bytecode before measuring, as installing it does. With
    PYTHONDONTWRITEBYTECODE set (as on the machine these figures come from)
    an editable checkout never gets its ``.pyc`` files, and each process of a
    crawl compiled the package's sources as it started: ~0.4 G instructions,
    a fifth of a second of CPU in each of the three processes of ``--workers
    2`` (counted in their CPU a page), one in the one-process crawl."""
    import compileall

    import loopcrawl

    if not compileall.compile_dir(os.path.dirname(loopcrawl.__file__), quiet=1):
        raise SystemExit("cannot write loopcrawl's bytecode")


def speed(pages: int, repeat: int,
          quiet: float = 0.0) -> tuple[list[str], dict[int, list[dict[str, float]]]]:
    if nginx_version() is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    compile_package()
    files = StaticFiles(pages, 0, free_port())
    files.write()
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        with Nginx(files) as srv, tempfile.TemporaryDirectory() as tmp:
            for i in range(repeat):
                for n in (1, 2):
                    wait_quiet(quiet)
                    sc0, b0 = srv.cpu_seconds(), cpu_busy_seconds()
                    r = crawl(srv.base_url + "/", n, tmp, f"w{n}-{i}", "--concurrency", "128",
                              "--per-host", "128")
                    # What neither the crawl nor nginx used, as a share of a core.
                    busy = cpu_busy_seconds() - b0 - (srv.cpu_seconds() - sc0) - r["cpu_s"]
                    r["others"] = max(0.0, busy) / r["wall"]
                    runs[n].append(r)
                    print(f"  round {i + 1}, workers {n}: {r['pages']:,} pages, "
                          f"{r['pages'] / r['duration']:,.0f} pages/s, "
                          f"{r['cpu_ms']:.2f} CPU-ms/page, other processes "
                          f"{r['others']:.0%} of a core", file=sys.stderr)
    finally:
        files.remove()
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    rate = {n: med[n]["pages"] / med[n]["duration"] for n in med}
    lines = [
        "| crawl | pages | pages/s | CPU-ms/page (all processes) | coordinator CPU-ms/page "
        "| each worker: CPU-ms per page it fetched (worst) | messages/page to workers, back "
        "| frames/page | bytes/page to workers | bytes/page back | peak RSS | other processes (of a core) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in (1, 2):
        m = med[n]
        name = "one process (default)" if n == 1 else f"--workers {n}"
        many = n > 1
        lines.append(
            f"| {name} | {m['pages']:,.0f} | {rate[n]:,.0f} | {m['cpu_ms']:.3f} "
            + (f"| {m['coord_ms']:.3f} | {m['worker_ms']:.3f}" if many else "| – | –")
            + " | " + (f"{m['msgs_out']:.2f}, {m['msgs_in']:.2f}" if many else "–")
            + f" | {m['frames']:.3f} | {m['bytes_out']:,.0f} | {m['bytes_in']:,.0f} "
            f"| {m['maxrss_mb']:.0f} MB | {m['others']:.0%} |")
    lines.append("")
    lines.append(f"Speed-up of `--workers 2`: **{rate[2] / rate[1]:.2f}×** the pages/s of the "
                 "one-process crawl (target ≥ 1.7×); pages/s over the crawl's own span "
                 "(`duration_s` of its stats), medians of "
                 f"{repeat} rounds, run in turn. Coordinator: target ≤ 0.1 CPU-ms a page "
                 "(start-up included: ~0.4 s of CPU); each worker ≤ 0.5. Other processes: the "
                 "CPU that neither the crawl nor nginx used during it, as a share of a core "
                 "(the machine is shared: the ratio of pages/s means something only while "
                 "that stays small, CPU-ms a page at any share). The package's bytecode is "
                 "written before the crawls, as installing it does (with "
                 "PYTHONDONTWRITEBYTECODE set, each process compiled its sources at start).")
    worst = max(r["others"] for rs in runs.values() for r in rs)
    if worst >= 0.15:
        lines += ["", f"**Measured under load**: other processes used up to {worst:.0%} of a "
                  f"core of the {os.cpu_count()} during these crawls, so the speed-up above says "
                  "little about this code, and CPU-ms a page are inflated by the contention "
                  "(caches, switches): compare them with the one-process crawl's of the same "
                  "run, or re-run on a quiet machine (`--wait-quiet 600`)."]
    return lines, runs


def latency(pages: int) -> list[str]:
    from loopcrawl.testsite import ServerProcess

    with ServerProcess(pages=pages, latency_ms=100) as srv, tempfile.TemporaryDirectory() as tmp:
        r = crawl(srv.base_url + "/", 2, tmp, "lat", "--concurrency", "100", "--per-host", "100")
    floor = r["pages"] * 0.1 / 100
    return [f"Latency-bound crawl ({pages:,} pages, 100 ms a response, concurrency 100) with "
            f"`--workers 2`: {r['pages']:,} requests in {r['duration']:.2f} s of crawl "
            f"({r['wall']:.2f} s of process), **{r['duration'] / floor:.2f}×** the floor of "
            f"{floor:.2f} s (requests × 100 ms ÷ 100)."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency-pages", type=int, default=3000)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    ap.add_argument("--wait-quiet", type=float, default=120.0, metavar="S",
                    help="before each crawl, wait up to S seconds for other processes to "
                         "use under 15%% of a core")
    a = ap.parse_args()
    lines, _ = speed(a.pages, a.repeat, a.wait_quiet)
    lines += ["", *latency(a.latency_pages)]
    head = [f"Measured {time.strftime('%Y-%m-%d')}. Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, loopcrawl {version('loopcrawl')}, aiohttp "
            f"{version('aiohttp')}, nginx {nginx_version()}. Command: "
            f"`python benchmarks/bench_workers.py --pages {a.pages} --repeat {a.repeat}`.", ""]
    print("\n".join(head + lines))
    if a.write:
        write_section(head + lines, SECTION)


if __name__ == "__main__":
    main()
