#!/usr/bin/env python3
"""Instructions per page of one or more loopcrawl checkouts, side by side.

The figure ``make bench`` writes (``## Crawl speed``): ``valgrind
--tool=callgrind`` over ``loopcrawl crawl URL -o out.jsonl --quiet --retries
0 --max-pages N`` against nginx serving the static 20,000-page test site,
less a 1-page crawl (start-up), divided by the records. Here every checkout
named crawls the same static copy (written once, by this checkout's test
site), each with its own ``.venv``, so two commits are compared on one page
set and one server::

    python benchmarks/instructions.py . ../base --pages 3000 --keep /tmp/cg

``--keep DIR`` leaves the callgrind files there (``callgrind_annotate
--inclusive=yes DIR/<name>-3000.out`` shows where the instructions go).
Callgrind counts user-space instructions, so the machine's load does not move
the figure; the page set can differ by a few pages between runs (64 requests
in flight).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import field_of  # noqa: E402
from servers import Nginx, StaticFiles, free_port, nginx_version  # noqa: E402


def count(tree: Path, url: str, pages: int, workdir: str, name: str) -> tuple[int, int]:
    """(instructions, records) of one crawl of ``pages`` by ``tree``'s loopcrawl."""
    out = os.path.join(workdir, f"{name}-{pages}.jsonl")
    trace = os.path.join(workdir, f"{name}-{pages}.out")
    exe = tree / ".venv" / "bin" / "loopcrawl"
    if os.path.exists(out):
        os.remove(out)  # -o (older checkouts have no -O) adds to a file
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={trace}", str(exe), "crawl",
           url + "/", "-o", out, "--quiet", "--retries", "0", "--max-pages", str(pages)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=tree)
    total = field_of(trace, "summary:")
    if p.returncode != 0 or not total:
        raise SystemExit(f"{tree}: callgrind failed: {p.stderr.strip()[-300:]}")
    with open(out) as fh:
        return total, sum(1 for _ in fh)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path, help="checkouts, each with its .venv")
    ap.add_argument("--pages", type=int, default=3000, help="pages of the long crawl")
    ap.add_argument("--site-pages", type=int, default=20_000, help="item pages of the site")
    ap.add_argument("--keep", help="directory for the callgrind files and outputs")
    a = ap.parse_args(argv)
    if shutil.which("valgrind") is None or nginx_version() is None:
        raise SystemExit("needs valgrind and nginx (apt-get install valgrind nginx)")
    workdir = a.keep or tempfile.mkdtemp(prefix="lc-ir-")
    os.makedirs(workdir, exist_ok=True)
    files = StaticFiles(a.site_pages, 0, free_port())
    try:
        files.write()
        for tree in a.trees:
            tree = tree.resolve()
            name = tree.name
            with Nginx(files) as srv:
                t1, n1 = count(tree, srv.base_url, 1, workdir, name)
            with Nginx(files) as srv:
                tn, nn = count(tree, srv.base_url, a.pages, workdir, name)
            per = (tn - t1) / max(1, nn - n1)
            print(f"{name}: {per / 1000:,.1f}k instructions per page ({nn:,} records less "
                  f"{n1}; start-up {t1 / 1e9:.3f} billion)", flush=True)
    finally:
        files.remove()
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
