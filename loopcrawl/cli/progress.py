"""The live progress display and the final summary, on standard error.

Standard output stays free for ``-o -``. On a terminal the display is a
rich panel redrawn four times a second; elsewhere (CI, pipes) a plain line
every ten seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from ..core.engine import Crawler

console = Console(stderr=True, highlight=False)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class Progress:
    """Watches a crawler's statistics and draws them until ``close()``."""

    def __init__(self, crawler: Crawler, *, live: bool | None = None) -> None:
        self.crawler = crawler
        self.live = console.is_terminal if live is None else live
        self._task: asyncio.Task[None] | None = None
        self._window: deque[tuple[float, int]] = deque(maxlen=20)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loopcrawl-progress")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _rate(self) -> float:
        """Pages per second over the last few seconds (not since the start)."""
        now, n = time.monotonic(), self.crawler.stats.records
        self._window.append((now, n))
        t0, n0 = self._window[0]
        return (n - n0) / (now - t0) if now > t0 else 0.0

    def render(self) -> Table:
        st = self.crawler.stats
        sched = self.crawler.scheduler.statistics() if self.crawler.scheduler else None
        fr = self.crawler.frontier.statistics()
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", justify="right")
        t.add_column()
        t.add_row("elapsed", f"{st.elapsed:6.1f} s")
        t.add_row("pages", f"{st.records:,}  ({st.ok:,} ok)  {self._rate():,.0f}/s now, "
                           f"{st.pages_per_second:,.0f}/s average")
        in_flight = sched.in_flight if sched else 0
        queued = fr.queued + (sched.buffered if sched else 0)
        t.add_row("in flight", f"{in_flight:,}   queued {queued:,}   seen {fr.seen:,}")
        errs = ", ".join(f"{k} {v:,}" for k, v in sorted(st.errors.items())) or "none"
        t.add_row("errors", errs)
        t.add_row("received", _human_bytes(st.bytes))
        return t

    async def _run(self) -> None:
        if self.live:
            with Live(self.render(), console=console, refresh_per_second=4, transient=True) as lv:
                while True:
                    await asyncio.sleep(0.25)
                    lv.update(self.render())
        else:
            while True:
                await asyncio.sleep(10)
                st = self.crawler.stats
                console.print(f"[{st.elapsed:7.1f}s] {st.records:,} pages, "
                              f"{self._rate():,.0f}/s, {sum(st.errors.values()):,} errors")


def print_summary(crawler: Crawler) -> None:
    """The final report: plain lines (no table), so nothing is ever truncated."""
    st = crawler.stats
    s = st.summary()
    rows = [
        ("pages", f"{st.records:,} ({st.ok:,} ok) in {st.elapsed:.2f} s"),
        ("rate", f"{st.pages_per_second:,.0f} pages/s"),
        ("errors", ", ".join(f"{k}: {v:,}" for k, v in s["errors"].items()) or "none"),
        ("links not followed",
         ", ".join(f"{k}: {v:,}" for k, v in s["skipped_links"].items()) or "none"),
        ("retries", f"{st.retries:,}"),
        *([("items", ", ".join(f"{k}: {v:,}" for k, v in s["items"].items()))]
          if st.items else []),
        ("received", _human_bytes(st.bytes)),
        ("output", st.output or "(none)"),
    ]
    head = "loopcrawl: crawl interrupted" if st.interrupted else "loopcrawl: crawl finished"
    console.print(f"[bold]{head}[/bold]")
    for name, value in rows:
        console.print(f"  {name:>18}  {value}", soft_wrap=True, markup=False)
    sys.stderr.flush()
