"""The crawl report: one self-contained HTML page of charts, and the sources
it can be built from (a live crawl's stats, page records, a state file).

``render_report(stats)`` draws the stats JSON (``CrawlStats.to_json()``);
``load_stats(path)`` rebuilds it from what a finished crawl left behind.
"""

from ._page import render_report
from .sources import load_stats, stats_from_records

__all__ = ["load_stats", "render_report", "stats_from_records"]
