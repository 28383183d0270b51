"""Crawler traps: URL spaces without end, and the limits that end them.

Two kinds of check, placed where they are cheapest:
- on links, before they reach the frontier (so a trap never fills memory):
  URL length and repeated path segments (``/a/a/a/a/``, ``/x/y/x/y/x/y``);
- at fetch time, on URLs already deduplicated: distinct query strings per
  path (calendars, session ids, ever-growing queries) and pages per host.
Each rejection is counted under its own name.
"""

from __future__ import annotations

from collections import Counter

import xxhash

from ..settings import Settings
from ..urls import host_of

__all__ = ["TrapGuard", "repeats"]


def repeats(url: str, limit: int) -> bool:
    """True if one path segment occurs more than ``limit`` times."""
    path = url.split("/", 3)[3].split("?", 1)[0] if url.count("/") > 3 else ""
    segments = [p for p in path.split("/") if p]
    if len(segments) <= limit:
        return False
    return max(Counter(segments).values()) > limit


class TrapGuard:
    def __init__(self, settings: Settings) -> None:
        self.max_length = settings.max_url_length
        self.max_repeats = settings.max_repeated_segments
        self.max_variants = settings.max_query_variants
        self.max_per_host = settings.max_pages_per_host
        # Keyed by a 64-bit hash of the path: 8 bytes of key, not the string.
        self._variants: dict[int, int] = {}
        self._per_host: Counter[str] = Counter()
        # A URL needs this many '/' to have more segments than the limit.
        self._slashes = 3 + self.max_repeats

    def filter_links(self, urls: list[str], skipped: Counter[str]) -> list[str]:
        """The links worth queueing; the others are counted in ``skipped``."""
        max_length, slashes = self.max_length, self._slashes
        ok = [u for u in urls if len(u) <= max_length and u.count("/") < slashes]
        if len(ok) == len(urls):
            return ok
        for u in urls:
            if len(u) > max_length:
                skipped["trap_url_length"] += 1
            elif u.count("/") >= slashes:
                if repeats(u, self.max_repeats):
                    skipped["trap_repeated_segments"] += 1
                else:
                    ok.append(u)
        return ok

    def at_fetch(self, url: str) -> str | None:
        """Why ``url`` (deduplicated already) must not be fetched, or None."""
        if self.max_per_host is not None:
            host = host_of(url)
            n = self._per_host[host] = self._per_host[host] + 1
            if n > self.max_per_host:
                return f"more than {self.max_per_host} pages on {host} (max_pages_per_host)"
        if self.max_variants is not None and "?" in url:
            key = xxhash.xxh3_64_intdigest(url.split("?", 1)[0].encode())
            n = self._variants[key] = self._variants.get(key, 0) + 1
            if n > self.max_variants:
                return (f"more than {self.max_variants} query strings on one path "
                        "(max_query_variants)")
        return None
