"""``loopcrawl bench --io-models`` end to end, at a tiny size.

Correctness only: it runs every model, prints the table and writes a PNG.
Speed is never asserted (this machine may be busy; BENCHMARKS.md has numbers).
matplotlib comes with the ``bench`` extra, which ``make setup`` installs: no skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_io_models_prints_a_table_and_writes_a_chart(tmp_path: Path) -> None:
    png = tmp_path / "chart" / "io.png"
    out_json = tmp_path / "io.json"
    p = subprocess.run(
        [sys.executable, "-m", "loopcrawl", "bench", "--io-models", "--pages", "60",
         "--latency-ms", "5", "--concurrency", "1,8", "--processes", "2", "--quiet-wait", "0",
         "--out", str(png), "--json", str(out_json)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert rows[0].startswith("| model | K |")
    got = {(r.split("|")[1].split()[0], int(r.split("|")[2])) for r in rows[1:]}
    assert got == {("sequential", 1), ("threads", 1), ("threads", 8), ("asyncio", 1),
                   ("asyncio", 8), ("processes", 1), ("processes", 8)}
    results = json.loads(out_json.read_text())
    assert all(r["error"] is None and r["ok"] == r["pages"] > 0 for r in results), results
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(str(png)).shape[0] > 100


def test_bench_needs_a_measurement() -> None:
    p = subprocess.run([sys.executable, "-m", "loopcrawl", "bench"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert "--io-models" in p.stderr and "Traceback" not in p.stderr
