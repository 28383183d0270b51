"""The crawl report: one self-contained HTML page of charts, and the sources
it can be built from (a live crawl's stats, page records, a state file).

``render_report(stats)`` draws the stats JSON (``CrawlStats.to_json()``);
``load_stats(path)`` rebuilds it from what a finished crawl left behind;
``write_stats`` writes either or both files, for the command line and for a
crawl run from code.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.stats import CrawlStats
from ..errors import OutputError
from ._page import render_report
from .sources import load_stats, stats_from_records

__all__ = ["load_stats", "render_report", "stats_from_records", "write_stats"]


def write_stats(stats: CrawlStats | dict[str, Any], *, stats_path: str | None = None,
                report_path: str | None = None, title: str = "loopcrawl report") -> None:
    """Write the stats JSON to ``stats_path`` and the HTML report to
    ``report_path`` (either may be None). Each file is written whole to a
    temporary name and renamed, so a reader never sees half of one. Raises
    OutputError naming the file that could not be written (the other is
    still attempted)."""
    data = stats.to_json() if isinstance(stats, CrawlStats) else stats
    failed: list[str] = []
    if stats_path:
        failed += _write(stats_path, json.dumps(data, indent=2) + "\n")
    if report_path:
        failed += _write(report_path, render_report(data, title=title))
    if failed:
        raise OutputError("; ".join(failed))


def _write(path: str, text: str) -> list[str]:
    """Write ``text`` to ``path``; [] when done, else [why] (for OutputError)."""
    regular = not os.path.exists(path) or os.path.isfile(path)
    tmp = f"{path}.tmp{os.getpid()}" if regular else path  # /dev/stdout: written in place
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        if tmp != path:
            os.replace(tmp, path)
    except OSError as e:
        if tmp != path and os.path.exists(tmp):
            os.unlink(tmp)
        return [f"cannot write {path}: {e.strerror or e}"]
    return []
