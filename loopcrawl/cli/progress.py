"""The live progress display and the final summary, on standard error.

Standard output stays free for ``-o -``. On a terminal the display is a
rich panel redrawn four times a second: the counts, the rate now and on
average, an ETA when the crawl can tell one, and the busiest hosts with what
each is doing (fetching, waiting on its delay, backing off). Elsewhere (CI,
pipes, a log file) it is one plain line every ``interval`` seconds, which a
log keeps readable; with ``--quiet``, nothing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..frontier import FrontierStats
from ..report._page import human_bytes

if TYPE_CHECKING:
    from ..core.engine import Crawler
    from ..core.politeness import HostState
    from ..core.stats import CrawlStats

console = Console(stderr=True, highlight=False)

PLAIN_INTERVAL = 5.0  # seconds between two plain progress lines (stderr not a terminal)
BUSIEST = 5  # hosts shown
_WINDOW = 10.0  # seconds over which the rate "now" and the queue's trend are measured
_STATE_STYLE = {"fetching": "green", "waiting on delay": "yellow", "backing off": "red",
                "queued": "cyan", "idle": "dim"}


def _human_seconds(s: float) -> str:
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Watches a crawler's statistics and draws them until ``close()``."""

    def __init__(self, crawler: Crawler, *, live: bool | None = None,
                 interval: float = PLAIN_INTERVAL) -> None:
        self.crawler = crawler
        self.live = console.is_terminal if live is None else live
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        # (monotonic time, records done, requests pending) samples, oldest first.
        self._window: deque[tuple[float, int, int]] = deque()
        self._hosts: list[HostState] = []
        self._hosts_at = 0.0
        # The frontier's figures, asked before each update (a shared frontier
        # asks its server), not by each of the lines that show them.
        self._fr = FrontierStats(0, 0, 0, 0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loopcrawl-progress")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _pending(self) -> int:
        """Requests not finished yet: queued in the frontier, buffered, in flight."""
        sched = self.crawler.scheduler.statistics() if self.crawler.scheduler else None
        fr = self._fr
        return fr.queued + (sched.buffered + sched.in_flight + sched.waiting_retry
                            if sched else 0)

    def sample(self) -> tuple[float, float | None]:
        """Take a sample; return the rate now (records a second over the last
        few seconds) and the ETA in seconds, or None when the crawl cannot tell."""
        now, done, pending = time.monotonic(), self.crawler.stats.records, self._pending()
        w = self._window
        w.append((now, done, pending))
        while len(w) > 2 and now - w[1][0] >= _WINDOW:
            w.popleft()
        t0, done0, pending0 = w[0]
        dt = now - t0
        rate = (done - done0) / dt if dt > 0 else 0.0
        return rate, self._eta(rate, pending, (pending - pending0) / dt if dt > 0 else 0.0)

    def _eta(self, rate: float, pending: int, trend: float) -> float | None:
        """With --max-pages: the pages left at the rate now (or less, if the queue
        runs out first). Otherwise only while the queue shrinks: pending requests
        at the rate it shrinks. A growing queue has no ETA."""
        etas = []
        budget = self.crawler.settings.max_pages
        if budget is not None and rate > 0:
            etas.append(max(0, budget - self.crawler.stats.records) / rate)
        if trend < 0 and pending:
            etas.append(pending / -trend)
        if pending == 0 and self.crawler.stats.records:
            etas.append(0.0)
        return min(etas) if etas else None

    def busiest(self) -> list[HostState]:
        """The busiest hosts, looked up at most once a second (a scan of the hosts;
        every 10 s past 10,000 hosts)."""
        sched = self.crawler.scheduler
        if sched is None:
            return []
        now = time.monotonic()
        every = 1.0 if sched.statistics().hosts <= 10_000 else 10.0
        if now - self._hosts_at >= every:
            busy = [h for h in sched.busiest(BUSIEST) if h.state != "idle"]
            self._hosts, self._hosts_at = busy, now
        return self._hosts

    def render(self) -> Group:
        st = self.crawler.stats
        sched = self.crawler.scheduler.statistics() if self.crawler.scheduler else None
        fr = self._fr
        rate, eta = self.sample()
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", justify="right")
        t.add_column()
        t.add_row("elapsed", f"{st.elapsed:6.1f} s" + (f"   ETA {_human_seconds(eta)}"
                                                        if eta is not None else ""))
        t.add_row("pages", f"{st.records:,}  ({st.ok:,} ok)  {rate:,.0f}/s now, "
                           f"{st.pages_per_second:,.0f}/s average")
        in_flight = sched.in_flight if sched else 0
        queued = fr.queued + (sched.buffered if sched else 0)
        t.add_row("in flight", f"{in_flight:,}   queued {queued:,}   seen {fr.seen:,}   "
                               f"hosts {sched.hosts if sched else 0:,}")
        errs = ", ".join(f"{k} {v:,}" for k, v in sorted(st.errors.items())) or "none"
        t.add_row("errors", errs)
        t.add_row("received", human_bytes(st.bytes))
        hosts = self.busiest()
        if not hosts:
            return Group(t)
        h = Table(box=None, padding=(0, 2), header_style="bold")
        for name, justify in (("busiest hosts", "left"), ("state", "left"),
                              ("in flight", "right"), ("queued", "right"), ("done", "right"),
                              ("errors", "right"), ("delay", "right")):
            h.add_column(name, justify=justify)  # type: ignore[arg-type]
        for hs in hosts:
            done = st.hosts.get(hs.host)
            h.add_row(Text(hs.host), Text(hs.state, style=_STATE_STYLE.get(hs.state, "")),
                      f"{hs.in_flight:,}", f"{hs.queued:,}",
                      f"{int(done[0]):,}" if done else "0", f"{int(done[2]):,}" if done else "0",
                      f"{hs.delay:.2f}s" if hs.delay else "-")
        return Group(t, h)

    def line(self) -> str:
        """The plain progress line (stderr not a terminal)."""
        st = self.crawler.stats
        sched = self.crawler.scheduler.statistics() if self.crawler.scheduler else None
        rate, eta = self.sample()
        fr = self._fr
        queued = fr.queued + (sched.buffered if sched else 0)
        hosts = self.busiest()[:2]
        busy = ("; busiest: " + ", ".join(f"{h.host} {h.state} ({h.in_flight} in flight, "
                                          f"{h.queued:,} queued)" for h in hosts)) if hosts else ""
        return (f"loopcrawl: [{st.elapsed:7.1f}s] {st.records:,} pages ({st.ok:,} ok, "
                f"{st.records - st.ok:,} failed), {rate:,.0f}/s, "
                f"{sched.in_flight if sched else 0:,} in flight, {queued:,} queued, "
                f"{human_bytes(st.bytes)}, ETA "
                f"{_human_seconds(eta) if eta is not None else 'unknown'}{busy}")

    async def refresh(self) -> None:
        """Ask the frontier for its figures (before ``render``, ``line``, ``sample``)."""
        self._fr = await self.crawler.frontier.statistics()

    async def _run(self) -> None:
        await self.refresh()
        if self.live:
            with Live(self.render(), console=console, refresh_per_second=4, transient=True) as lv:
                while True:
                    await asyncio.sleep(0.25)
                    await self.refresh()
                    lv.update(self.render())
        else:
            self.sample()
            while True:
                await asyncio.sleep(self.interval)
                await self.refresh()
                console.print(self.line(), markup=False, soft_wrap=True)


def print_summary(st: CrawlStats) -> None:
    """The final report: plain lines (no table), so nothing is ever truncated."""
    s = st.summary()
    rows = [
        ("pages", f"{st.records:,} ({st.ok:,} ok) in {st.elapsed:.2f} s"),
        ("rate", f"{st.pages_per_second:,.0f} pages/s"),
        ("errors", ", ".join(f"{k}: {v:,}" for k, v in s["errors"].items()) or "none"),
        ("links not followed",
         ", ".join(f"{k}: {v:,}" for k, v in s["skipped_links"].items()) or "none"),
        ("trap limits hit", ", ".join(f"{k}: {v:,}" for k, v in s["traps"].items()) or "none"),
        ("retries", f"{st.retries:,}"),
        *([("items", ", ".join(f"{k}: {v:,}" for k, v in s["items"].items()))]
          if st.items else []),
        ("received", human_bytes(st.bytes)),
        ("output", st.output or "(none)"),
    ]
    head = "loopcrawl: crawl interrupted" if st.interrupted else "loopcrawl: crawl finished"
    console.print(f"[bold]{head}[/bold]")
    for name, value in rows:
        summary_row(name, value)


def summary_row(name: str, value: str) -> None:
    """One line of the summary (the CLI adds the whole crawl's under a resume)."""
    console.print(f"  {name:>18}  {value}", soft_wrap=True, markup=False)
    sys.stderr.flush()
