"""Counters, the live progress display and the final report.

Every request ends as one ``FetchRecord``; ``CrawlStats.record`` is the one
place they are counted, so the display and the summary always agree with the
output file.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..http import FetchRecord


@dataclass(slots=True)
class CrawlStats:
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    pages: int = 0  # records with a response (any status)
    ok: int = 0  # records without error
    records: int = 0
    bytes: int = 0
    links: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # links not followed, by reason
    retries: int = 0
    robots_fetches: int = 0
    # Spiders: items "scraped" (exported), "dropped" by a pipeline,
    # "pipeline_error", and "field_error" (one per field that could not be read).
    items: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    output: str | None = None

    def record(self, r: FetchRecord) -> None:
        self.records += 1
        if r.status is not None:
            self.pages += 1
            self.bytes += r.bytes
        if r.error is None:
            self.ok += 1
        else:
            self.errors[r.error] += 1
        self.links += r.links

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
            "retries": self.retries,
            **({"items": dict(sorted(self.items.items()))} if self.items else {}),
            "bytes": self.bytes,
            "elapsed_s": round(self.elapsed, 3),
            "pages_per_s": round(self.pages_per_second, 1),
            "interrupted": self.interrupted,
            "output": self.output,
        }
