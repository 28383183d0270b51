"""The crawl's counters, and the stats JSON (schema 1) built from them.

Every request ends as one ``FetchRecord``; ``CrawlStats.record`` is the one
place they are counted, so the live display, the summary, ``--stats`` and
``--report`` always agree with the output file. ``loopcrawl report`` feeds
the records of a finished crawl through the same ``record`` to rebuild the
same figures.

What ``record`` keeps is bounded whatever the crawl's size: response times
go into a fixed log-scale histogram (percentiles to within 4.4%, not a list
of every time), the timeline into at most ``TIMELINE_POINTS`` intervals
(merged pairwise as the crawl goes on), examples and the slowest pages into
small fixed-size lists, and hosts into a table of at most ``MAX_HOSTS``
(later hosts are counted under ``"(other)"``). The schema is documented in
``docs/stats.md``; keys are only ever added to it.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..http import FetchRecord

__all__ = ["SCHEMA", "CrawlStats", "percentile"]

SCHEMA = 1  # the version of the stats JSON; bumped only if a key changes meaning

# Response-time histogram edges in milliseconds: 16 per doubling (each bucket
# 4.4% wide) from 0.05 ms to ~55 minutes; bucket i counts times in
# (EDGES[i-1], EDGES[i]], the last one everything above.
_PER_OCTAVE = 16
EDGES: tuple[float, ...] = tuple(0.05 * 2 ** (i / _PER_OCTAVE) for i in range(26 * _PER_OCTAVE))
TIMELINE_POINTS = 600  # intervals kept; beyond, neighbours merge and the interval doubles
MAX_HOSTS = 100_000  # hosts counted one by one; later ones go to OTHER_HOST
OTHER_HOST = "(other)"
EXAMPLES_PER_ERROR = 5  # example URLs kept per error kind
SLOWEST = 10  # slowest responses kept
TOP_HOSTS = 50  # hosts in the JSON (the busiest by records)
_CT_CACHE_MAX = 512


def percentile(hist: list[int], q: float) -> float:
    """The ``q`` (0..1) percentile of a histogram over ``EDGES``: the upper edge of
    the bucket holding it (so at most 4.4% above the true value)."""
    total = sum(hist)
    if not total:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return EDGES[min(i, len(EDGES) - 1)]
    return EDGES[-1]  # pragma: no cover (the loop always reaches rank)


@dataclass(slots=True)
class CrawlStats:
    """Everything counted about one crawl (or one run of a resumed crawl)."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    started_at: float = field(default_factory=time.time)  # Unix time, for the JSON
    finished_at: float | None = None
    pages: int = 0  # records with a response (any status)
    ok: int = 0  # records without error
    records: int = 0
    bytes: int = 0
    links: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # links not followed, by reason
    # Trap limits that stopped the crawl somewhere, by setting: requests not
    # fetched and similar pages whose links were not followed (core/traps.py).
    traps: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    robots_fetches: int = 0
    # --workers N: the worker processes (``workers.pool.WorkersStats`` as a
    # dict: started, lost, requests_lost, frames, bytes) and CPU seconds of
    # this process and of the workers; None with one process.
    workers: dict[str, Any] | None = None
    # Spiders: items "scraped" (exported), "dropped" by a pipeline,
    # "pipeline_error", and "field_error" (one per field that could not be read).
    items: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    output: str | None = None
    # None for a live crawl; "records" or "state" when rebuilt after the fact
    # (then links not followed, retries and robots.txt fetches are not known).
    rebuilt_from: str | None = None
    # By key: plain dicts updated with get() (Counter's __missing__ is Python code).
    status: dict[int, int] = field(default_factory=dict)
    content_types: dict[str, int] = field(default_factory=dict)
    depths: dict[int, int] = field(default_factory=dict)
    # host -> [records, pages, errors, bytes, response ms summed]
    hosts: dict[str, list[float]] = field(default_factory=dict)
    times: list[int] = field(default_factory=lambda: [0] * (len(EDGES) + 1))
    time_max_ms: float = 0.0
    # Records (and errors) finished in each interval of ``tick`` seconds from started_at.
    tick: float = 0.125  # seconds (a power of two: doubling stays exact)
    timeline: list[int] = field(default_factory=list)
    timeline_errors: list[int] = field(default_factory=list)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    slowest: list[tuple[float, str, int]] = field(default_factory=list)  # a min-heap
    _ct_names: dict[str | None, str] = field(default_factory=dict)

    def record(self, r: FetchRecord) -> None:
        """Count one record. Runs once per page: dict updates and one bisect,
        written out (``host_of`` inline, no helper calls on the common path)."""
        self.records += 1
        status = r.status
        ms = r.elapsed_ms
        url = r.url
        host = url.split("/", 3)[2]  # host_of(url)
        h = self.hosts.get(host) or self._host(host)
        h[0] += 1
        if status is not None:
            n = r.bytes
            self.pages += 1
            self.bytes += n
            h[1] += 1
            h[3] += n
            h[4] += ms
            d = self.status
            d[status] = d.get(status, 0) + 1
            ct = self._ct_names.get(r.content_type) or self._content_type(r.content_type)
            cts = self.content_types
            cts[ct] = cts.get(ct, 0) + 1
            self.times[bisect_left(EDGES, ms)] += 1
            if ms > self.time_max_ms:
                self.time_max_ms = ms
            slow = self.slowest
            if len(slow) < SLOWEST:
                heapq.heappush(slow, (ms, url, status))
            elif ms > slow[0][0]:
                heapq.heapreplace(slow, (ms, url, status))
        self.links += r.links
        d = self.depths
        d[r.depth] = d.get(r.depth, 0) + 1
        i = int((r.fetched_at + ms / 1000 - self.started_at) / self.tick)
        tl = self.timeline
        if i >= len(tl) or i < 0:
            i = self._grow(max(i, 0))
        tl[i] += 1
        if r.error is None:
            self.ok += 1
        else:
            self._error(r, r.error, h, i)

    def _error(self, r: FetchRecord, error: str, h: list[float], i: int) -> None:
        """The rest of ``record`` for a failure (the rare case: kept out of line)."""
        self.errors[error] += 1
        h[2] += 1
        self.timeline_errors[i] += 1
        ex = self.examples.get(error)
        if ex is None:
            ex = self.examples[error] = []
        if len(ex) < EXAMPLES_PER_ERROR:
            ex.append((r.url, r.message or ""))

    def _content_type(self, raw: str | None) -> str:
        name = (raw or "").split(";", 1)[0].strip().lower() or "(none)"
        if len(self._ct_names) >= _CT_CACHE_MAX:
            self._ct_names.clear()
        self._ct_names[raw] = name
        return name

    def _host(self, host: str) -> list[float]:
        if len(self.hosts) >= MAX_HOSTS:
            host = OTHER_HOST
            h = self.hosts.get(host)
            if h is not None:
                return h
        h = self.hosts[host] = [0, 0, 0, 0, 0.0]
        return h

    def _grow(self, i: int) -> int:
        """Make room for interval ``i``: extend the timeline, merging neighbours
        (and doubling the interval) while it would exceed TIMELINE_POINTS."""
        while i >= TIMELINE_POINTS:
            for tl in (self.timeline, self.timeline_errors):
                merged = [sum(tl[j:j + 2]) for j in range(0, len(tl), 2)]
                tl[:] = merged
            self.tick *= 2
            i //= 2
        grow = i + 1 - len(self.timeline)
        if grow > 0:
            self.timeline.extend([0] * grow)
            self.timeline_errors.extend([0] * grow)
        return i

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def pages_per_second(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "pages": self.pages,
            "ok": self.ok,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},  # plain keys: any JSON encoder
            "skipped_links": dict(sorted(self.skipped.items())),
            "traps": dict(sorted(self.traps.items())),
            "retries": self.retries,
            **({"items": dict(sorted(self.items.items()))} if self.items else {}),
            "bytes": self.bytes,
            "elapsed_s": round(self.elapsed, 3),
            "pages_per_s": round(self.pages_per_second, 1),
            "interrupted": self.interrupted,
            "output": self.output,
            "rebuilt_from": self.rebuilt_from,
        }

    def to_json(self) -> dict[str, Any]:
        """The stats JSON, schema 1 (``docs/stats.md``): what ``--stats`` writes
        and ``--report`` draws. Keys with numbers for names (status, depth)
        are strings, as JSON needs."""
        duration = self.elapsed
        n_times = self.pages
        hist = self.times
        hosts = heapq.nlargest(TOP_HOSTS, self.hosts.items(), key=lambda kv: (kv[1][0], kv[0]))
        skipped = self.skipped
        return {
            "schema": SCHEMA,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at or self.started_at + duration),
            "duration_s": round(duration, 3),
            "interrupted": self.interrupted,
            "records": self.records,
            "pages": self.pages,
            "ok": self.ok,
            "failed": self.records - self.ok,
            "pages_per_s": round(self.records / duration, 2) if duration > 0 else 0.0,
            "bytes": {"total": self.bytes,
                      "mean_per_page": round(self.bytes / n_times) if n_times else 0},
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "content_type": dict(sorted(self.content_types.items(), key=lambda kv: -kv[1])),
            "error": dict(sorted(self.errors.items())),
            "error_examples": {k: [{"url": u, "message": m} for u, m in v]
                               for k, v in sorted(self.examples.items())},
            "depth": {str(k): v for k, v in sorted(self.depths.items())},
            "hosts": {
                "count": len(self.hosts),
                "top": [{"host": h, "records": int(v[0]), "pages": int(v[1]),
                         "errors": int(v[2]), "bytes": int(v[3]),
                         "mean_ms": round(v[4] / v[1], 1) if v[1] else None}
                        for h, v in hosts],
            },
            "response_ms": {
                "count": n_times,
                "mean": round(sum(h[4] for h in self.hosts.values()) / n_times, 1)
                if n_times else 0.0,
                **{f"p{q}": round(min(percentile(hist, q / 100), self.time_max_ms), 1)
                   for q in (50, 90, 95, 99)},
                "max": round(self.time_max_ms, 1),
                "histogram": [[round(EDGES[min(i, len(EDGES) - 1)], 3), n]
                              for i, n in enumerate(hist) if n],
            },
            "slowest": [{"url": u, "ms": round(ms, 1), "status": st}
                        for ms, u, st in sorted(self.slowest, reverse=True)],
            "timeline": {"interval_s": self.tick, "records": list(self.timeline),
                         "errors": list(self.timeline_errors)},
            "links": {"found": self.links, "not_followed": dict(sorted(skipped.items()))},
            "scope_stops": skipped.get("scope", 0),
            "traps": {"links": {k: v for k, v in sorted(skipped.items())
                                if k.startswith("trap")},
                      "fetches": self.errors.get("trap", 0),
                      "limits": dict(sorted(self.traps.items()))},
            "retries": self.retries,
            "robots_fetches": self.robots_fetches,
            "workers": self.workers,
            "items": dict(sorted(self.items.items())),
            "output": self.output,
            "rebuilt_from": self.rebuilt_from,
        }


def _iso(t: float) -> str:
    """Unix time as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
