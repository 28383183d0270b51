#!/usr/bin/env python3
"""The hostile corner, crawled with default settings: does it end, within its
timeouts, in bounded memory, with every misbehaviour recorded as what it is?
And the trap section: does a default crawl end by itself, with each endless
URL space bounded and every legitimate page found?

    python benchmarks/bench_hostile.py [--write] [--part corner|traps]

Starts ``loopcrawl testsite --hostile`` in its own process, runs
``loopcrawl crawl <site>/hostile/`` (defaults, robots.txt obeyed) as a measured
subprocess, checks each path against ``hostile.EXPECTED``, prints a table and,
with ``--write``, records it in BENCHMARKS.md under ``## Hostile corner``.
Then it serves the test site in a thread of its own (to read its request
log), runs ``loopcrawl crawl <site>/traps/`` the same way, counts the requests
into each of ``traps.TRAPS`` and the legitimate pages found, and records them
under ``## Crawler traps``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import run_measured  # noqa: E402

from loopcrawl.settings import Settings  # noqa: E402
from loopcrawl.testsite.hostile import EXPECTED  # noqa: E402

SECTION = "## Hostile corner (benchmarks/bench_hostile.py)"
TRAPS_SECTION = "## Crawler traps (benchmarks/bench_hostile.py)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="record the result in BENCHMARKS.md")
    ap.add_argument("--part", choices=("all", "corner", "traps"), default="all")
    args = ap.parse_args()
    ok = True
    if args.part in ("all", "corner"):
        ok = corner(args.write)
    if args.part in ("all", "traps"):
        ok = traps(args.write) and ok
    return 0 if ok else 1


def corner(write: bool) -> bool:
    """The hostile corner: each misbehaviour recorded as what it is."""
    server = subprocess.Popen(
        [sys.executable, "-m", "loopcrawl.testsite", "--pages", "10", "--port", "0",
         "--print-port", "--hostile"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "hostile.jsonl"
            m = run_measured([sys.executable, "-m", "loopcrawl", "crawl", base + "/hostile/",
                              "-o", str(out), "--quiet"], timeout=600,
                             log_path=str(Path(tmp) / "log"))
            recs = [json.loads(line) for line in out.read_text().splitlines()]
    finally:
        server.terminate()
        server.wait(10)
    got = {r["url"].removeprefix(base): r for r in recs}
    wrong = []
    for path, want in EXPECTED.items():
        r = got.get(path, {})
        have = r.get("error") if isinstance(want, str) else r.get("status")
        if have != want:
            wrong.append(f"{path}: expected {want}, got {have}")
    s = Settings()
    # The slowest failure: 1 + retries attempts of the total timeout, plus back-offs.
    bound = (s.retries + 1) * s.timeout + sum(
        s.retry_backoff * 2 ** i * 1.5 for i in range(s.retries))
    kinds: dict[str, int] = {}
    for r in recs:
        if r.get("error"):
            kinds[r["error"]] = kinds.get(r["error"], 0) + 1
    rows = [
        ("records", f"{len(recs):,}"),
        ("paths checked", f"{len(EXPECTED) - len(wrong)}/{len(EXPECTED)} as expected"),
        ("wall", f"{m.wall:.1f} s (bound: {bound:.0f} s = {s.retries + 1} attempts x "
                 f"{s.timeout:.0f} s + back-off)"),
        ("CPU", f"{m.cpu:.2f} s"),
        ("peak RSS", f"{m.maxrss_kib / 1024:.0f} MB (target < 200 MB)"),
        ("errors by kind", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))),
        ("exit code", str(m.returncode)),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)
    table = f"| {'':<{width}} | |\n|{'-' * (width + 2)}|---|\n" + table
    print(table)
    for w in wrong:
        print("WRONG:", w)
    if write:
        text = (f"{SECTION}\n\n`python benchmarks/bench_hostile.py --write`, "
                f"{dt.date.today()}, {platform.machine()} with {_cpu()}, Python "
                f"{platform.python_version()}. Default settings; the test site serves "
                "`/hostile/` from its own process.\n\n" + table + "\n\n"
                "The wall time is the slowest misbehaviour (the byte-a-second trickle: "
                "three attempts of the 30 s total timeout, with back-off) plus what the "
                "run waits for around it: interpreter start-up and the 14,000 other "
                "records on the same host (8 at a time).\n\n")
        _write_section(ROOT / "BENCHMARKS.md", SECTION, text)
    return not wrong and m.returncode == 0 and m.maxrss_kib < 200 * 1024 and m.wall < bound + 10


def traps(write: bool) -> bool:
    """The trap section with default settings: requests into each endless
    space (from the server's log), legitimate pages found, and the crawl's
    own end (exit code, wall time)."""
    from collections import Counter

    from loopcrawl.testsite import ServerThread, Site
    from loopcrawl.testsite import traps as section

    with ServerThread(Site(10), hostile=True) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        base = srv.base_url
        out = Path(tmp) / "traps.jsonl"
        m = run_measured([sys.executable, "-m", "loopcrawl", "crawl", base + section.ROOT,
                          "-o", str(out), "--quiet"], timeout=600,
                         log_path=str(Path(tmp) / "log"))
        recs = [json.loads(line) for line in out.read_text().splitlines()]
        per_trap = Counter(section.trap_of(e.raw_path) for e in srv.server.log)
    found = {r["url"].removeprefix(base) for r in recs if r.get("status") == 200}
    legit = section.expected_paths()
    rows = [(f"requests into: {name}", f"{per_trap[name]:,}") for name in section.TRAPS]
    rows += [
        ("legitimate pages found", f"{len(legit & found):,} of {len(legit):,} "
                                   f"(a {section.LISTING_PAGES}-page listing, "
                                   f"{section.ITEMS:,} items)"),
        ("requests in all", f"{sum(per_trap.values()):,}"),
        ("wall", f"{m.wall:.1f} s"),
        ("CPU", f"{m.cpu:.2f} s"),
        ("peak RSS", f"{m.maxrss_kib / 1024:.0f} MB"),
        ("exit code", str(m.returncode)),
    ]
    width = max(len(k) for k, _ in rows)
    table = "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)
    table = f"| {'':<{width}} | |\n|{'-' * (width + 2)}|---|\n" + table
    print(table)
    worst = max(per_trap[name] for name in section.TRAPS)
    if write:
        text = (f"{TRAPS_SECTION}\n\n`python benchmarks/bench_hostile.py --part traps "
                f"--write`, {dt.date.today()}, {platform.machine()} with {_cpu()}, Python "
                f"{platform.python_version()}. `loopcrawl crawl <site>/traps/ -o out.jsonl` "
                "with default settings (robots.txt obeyed, no delay) against the test "
                "site's trap section (`loopcrawl/testsite/traps.py`), served from a thread "
                "of the benchmark's process so that its request log can be read; the crawl "
                "is a subprocess.\n\n" + table + "\n\n"
                "All ten endless spaces live under `/traps/`, one family for the "
                "similar-page budget (host and first path segment), so they share its 50 "
                "links; spread over ten first segments (as `tests/test_traps.py` also "
                "checks) each costs 53-59 requests. Session ids with known names cost 2-3 "
                "requests: canonicalization makes every page one URL.\n\n")
        _write_section(ROOT / "BENCHMARKS.md", TRAPS_SECTION, text)
    return m.returncode == 0 and worst <= 100 and legit <= found


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _write_section(path: Path, section: str, text: str) -> None:
    """Replace this section of BENCHMARKS.md (up to the next '## '), or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(section)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(section))
        new = old[:start] + text + (old[end + 1:] if end >= 0 else "")
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
