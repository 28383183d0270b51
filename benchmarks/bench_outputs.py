#!/usr/bin/env python3
"""What each output format costs: CPU per page and bytes per page.

The 20,000-page test site (its own process, never counted) is crawled by
``loopcrawl crawl URL -o out.EXT --quiet --retries 0`` once per format, the
formats in turn, ``--repeat`` rounds; plus a crawl with no output as the
floor. CPU (user + sys) of the crawler process comes from ``os.wait4``
(``measure.run_measured``). Every output is read back with its own tool
(json, csv, sqlite3, pyarrow, warcio) and must hold one record per request
(WARC: one response per fetched page).

    python benchmarks/bench_outputs.py            # print the table
    python benchmarks/bench_outputs.py --write    # and update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from bench_state import write_section
from measure import run_measured

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Output formats (benchmarks/bench_outputs.py)"
FORMATS = ["none", ".jsonl", ".csv", ".sqlite", ".parquet", ".warc.gz", ".jsonl.gz", ".json"]


def count(path: Path) -> int:
    """Records in an output, read with the format's own tool."""
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            return sum(1 for _ in fh)
    if name.endswith(".json"):
        import orjson

        return len(orjson.loads(path.read_bytes()))
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            return sum(1 for _ in csv.reader(fh)) - 1
    if name.endswith(".sqlite"):
        con = sqlite3.connect(path)
        try:
            return int(con.execute("SELECT count(*) FROM pages").fetchone()[0])
        finally:
            con.close()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    from warcio.archiveiterator import ArchiveIterator

    with path.open("rb") as fh:
        return sum(r.rec_type == "response" for r in ArchiveIterator(fh, check_digests="raise"))


def bench(pages: int, repeat: int) -> list[str]:
    from loopcrawl.testsite import ServerProcess

    runs: dict[str, list[tuple[float, float]]] = {f: [] for f in FORMATS}  # (cpu/page, B/page)
    raw: dict[str, list[tuple[float, float, int]]] = {f: [] for f in FORMATS}
    with ServerProcess(pages=pages) as srv, tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            records = 0  # the crawl's records, counted in its JSONL (run first)
            for fmt in FORMATS:
                out = Path(tmp) / f"out{i}{fmt}"
                cmd = [sys.executable, "-m", "loopcrawl", "crawl", srv.base_url + "/",
                       "--quiet", "--retries", "0"]
                if fmt != "none":
                    cmd += ["-O", str(out)]
                m = run_measured(cmd, timeout=600, log_path=str(Path(tmp) / "log"))
                if m.returncode != 0:
                    raise SystemExit(f"{fmt}: exit {m.returncode}: {m.stderr_tail}")
                n = 0  # records in this crawl's output (the WARC and none: the JSONL's)
                size = 0.0
                if fmt != "none":
                    n = count(out)
                    if fmt == ".jsonl":
                        records = n
                    elif fmt.startswith(".warc"):
                        n = 0
                    elif abs(n - records) > records // 100:  # a crawl differs by a page or so
                        raise SystemExit(f"{fmt}: {n:,} records, the JSONL had {records:,}")
                    size = out.stat().st_size
                    out.unlink()
                raw[fmt].append((m.cpu, size, n))
            for fmt in FORMATS:
                cpu, size, n = raw[fmt][-1]
                n = n or records
                runs[fmt].append((cpu / n * 1000, size / n))
                print(f"round {i + 1} {fmt:>9}: {runs[fmt][-1][0]:.3f} CPU-ms/page, "
                      f"{runs[fmt][-1][1]:,.0f} B/page", file=sys.stderr)
    return table(runs, pages, repeat)


def table(runs: dict[str, list[tuple[float, float]]], pages: int, repeat: int) -> list[str]:
    base = statistics.median(c for c, _ in runs["none"])
    jsonl = statistics.median(c for c, _ in runs[".jsonl"])
    lines = [f"The {pages:,}-page test site crawled with one `-o` (`-O`) each, the formats "
             f"in turn, median of {repeat} rounds; every output read back with its own "
             "tool, one record per request (WARC: a response per page fetched):", "",
             "| output | CPU-ms/page | over no output | over JSONL | bytes/page |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for fmt, rs in runs.items():
        cpu = statistics.median(c for c, _ in rs)
        size = statistics.median(s for _, s in rs)
        name = "no `-o`" if fmt == "none" else f"`-o pages{fmt}`"
        over_jsonl = "–" if fmt in ("none", ".jsonl") else f"{cpu - jsonl:+.3f}"
        lines.append(f"| {name} | {cpu:.3f} | {cpu - base:+.3f} | {over_jsonl} | "
                     + (f"{size:,.0f} |" if fmt != "none" else "– |"))
    return lines


def writers(n: int = 20_000) -> list[str]:
    """Each writer alone, in this process: CPU-µs to write one page's record
    (WARC: one exchange with a 10 KB page), the file on a tmpfs or disk; less
    noisy than whole crawls on a shared machine."""
    import time

    from loopcrawl.http import FetchRecord, Request
    from loopcrawl.net.fetcher import Fetched
    from loopcrawl.outputs import open_outputs

    recs = [FetchRecord(url=f"http://127.0.0.1:8000/cat{i % 20}/item{i}.html", depth=3,
                        referrer=f"http://127.0.0.1:8000/cat{i % 20}/", fetched_at=1.8e9 + i,
                        final_url=f"http://127.0.0.1:8000/cat{i % 20}/item{i}.html", status=200,
                        title=f"Item {i} — Category {i % 20}", content_type="text/html",
                        bytes=10_400, elapsed_ms=5.4, links=29).to_dict() for i in range(n)]
    body = b"<html>" + b"<p>some text, a link <a href='/x'>x</a></p>" * 240 + b"</html>"
    lines = ["Each writer alone, in one process (`writers()`): CPU-µs per page written, "
             f"{n:,} records (WARC: exchanges with a {len(body) // 1000} KB body, which "
             "compresses far better than real pages), least of three:", "",
             "| output | CPU-µs/page | bytes/page |", "| --- | ---: | ---: |"]
    best: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):  # the least of three: the writer, not the neighbours
            for fmt in FORMATS[1:]:
                path = Path(tmp) / f"w{fmt}"
                t0 = time.process_time()
                with open_outputs([str(path)], mode="overwrite") as outs:
                    out = outs[0]
                    if fmt.startswith(".warc"):
                        for r in recs:
                            out.write_response(Request(r["url"]), Fetched(
                                r["url"], 200, "text/html", "utf-8", body,
                                headers={"Content-Type": "text/html"},
                                request_headers={"User-Agent": "loopcrawl"}))
                    else:
                        for r in recs:
                            out.write_record(r)
                cpu = (time.process_time() - t0) / n * 1e6
                if fmt not in best or cpu < best[fmt][0]:
                    best[fmt] = (cpu, path.stat().st_size)
    for fmt, (cpu, size) in best.items():
        lines.append(f"| `{fmt}` | {cpu:.1f} | {size / n:,.0f} |")
    return lines


def machine() -> list[str]:
    import subprocess

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = [line for line in lscpu.splitlines()
           if line.split(":")[0] in ("Architecture", "CPU(s)", "Model name")]
    pkgs = ", ".join(f"{p} {version(p)}" for p in ("loopcrawl", "orjson", "pyarrow", "warcio"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"Machine: {'; '.join(' '.join(c.split()) for c in cpu)}; Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {pkgs}. Load "
            f"average at the start: {load}. Command: `python benchmarks/bench_outputs.py "
            "--write` (also run by `make bench`)."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    ap.add_argument("--writers-only", action="store_true", help="only the in-process table")
    args = ap.parse_args()
    lines = [*machine(), "", *writers()]
    if not args.writers_only:
        lines += ["", *bench(args.pages, args.repeat)]
    print("\n".join(lines))
    if args.write:
        write_section(lines, SECTION)


if __name__ == "__main__":
    main()
