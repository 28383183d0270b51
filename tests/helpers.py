"""Small helpers shared by the tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from loopcrawl import CrawlStats, FetchRecord, Settings, crawl


def run(seeds: str | list[str], **settings: Any) -> tuple[list[FetchRecord], CrawlStats]:
    """Crawl to the end; return every record and the statistics."""
    records: list[FetchRecord] = []
    seeds = [seeds] if isinstance(seeds, str) else seeds
    settings.setdefault("timeout", 10.0)
    stats = crawl(Settings(seeds=tuple(seeds), **settings), on_record=records.append)
    return records, stats


def by_url(records: list[FetchRecord]) -> dict[str, FetchRecord]:
    out = {r.url: r for r in records}
    assert len(out) == len(records), "a URL produced two records"
    return out


def rows_in(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` as another process reads them (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
