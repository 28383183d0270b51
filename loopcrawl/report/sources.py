"""Stats for a crawl that has ended, rebuilt from what it left behind.

``loopcrawl report`` takes page records (JSON lines, as ``crawl -o`` writes
them, plain or gzipped), a ``--state`` file, or a stats JSON (``--stats``).
Records go through the same ``CrawlStats.record`` as in a live crawl, so a
report built after the fact shows the same figures as ``--report`` would
have, except for what only the live crawl knew (retries, robots.txt fetches,
links not followed).

A state file has the outputs of its crawl bound to it: the page records are
read from its JSON-lines output, up to the last checkpoint. Without one (a
spider's items, or no ``-o``), the state's own table is used: every request
done or failed with its depth, host and error kind, but no status, time or
size.
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson

from ..core.stats import SCHEMA, CrawlStats
from ..errors import ConfigError, StateError
from ..frontier.sqlite import read_only
from ..http import FetchRecord

__all__ = ["load_stats", "stats_from_records"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_GZIP_MAGIC = b"\x1f\x8b"


def stats_from_records(records: Iterable[dict[str, Any]], *, source: str = "",
                       span: tuple[float, float] | None = None) -> CrawlStats:
    """Count page records (dicts as ``FetchRecord.to_dict`` writes them). The crawl's
    start is its first request's, its end its last response's: ``span`` gives both
    (a first pass over a file), else the records are held in memory to find them.
    Raises ConfigError when there is no page record (a file of a spider's items)."""
    if span is None:
        records = list(records)
        span = _span(records, source)
    start, end = span
    st = CrawlStats(started=0.0, finished=end - start, started_at=start, finished_at=end,
                    output=source or None, rebuilt_from="records")
    for d in records:
        st.record(_record(d, source))
    if not st.records:
        raise ConfigError(f"{source or 'the input'} holds no page records")
    return st


def _span(records: Iterable[dict[str, Any]], source: str) -> tuple[float, float]:
    """(first request's start, last response's end) in Unix time."""
    start, end = float("inf"), float("-inf")
    for d in records:
        r = _record(d, source)
        start = min(start, r.fetched_at)
        end = max(end, r.fetched_at + r.elapsed_ms / 1000)
    if start > end:
        raise ConfigError(f"{source or 'the input'} holds no page records")
    return start, end


def _record(d: Any, source: str) -> FetchRecord:
    if not isinstance(d, dict) or "url" not in d or "fetched_at" not in d or "depth" not in d:
        raise ConfigError(f"{source or 'the input'} is not a file of page records "
                          "(each line a JSON object with url, depth, fetched_at, ...)")
    try:
        return FetchRecord(
            url=str(d["url"]), depth=int(d["depth"]), referrer=d.get("referrer"),
            fetched_at=_time(d["fetched_at"]), final_url=d.get("final_url"),
            status=int(d["status"]) if d.get("status") is not None else None,
            title=d.get("title"), content_type=d.get("content_type"),
            bytes=int(d.get("bytes") or 0), elapsed_ms=float(d.get("elapsed_ms") or 0.0),
            links=int(d.get("links") or 0), redirects=int(d.get("redirects") or 0),
            error=d.get("error"), message=d.get("message"))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: a record for {d.get('url')!r} has a bad value: {e}") from None


def _time(v: Any) -> float:
    """Unix time from a record's ``fetched_at``: a number (JSON, CSV, SQLite), an
    ISO 8601 string, or a datetime (Parquet's timestamp column)."""
    if isinstance(v, datetime):
        return v.timestamp()
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    return float(v)


def _lines(fh: IO[bytes], source: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    read = 0
    for n, line in enumerate(fh, 1):
        read += len(line)
        if limit is not None and read > limit:
            return
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            if not line.endswith(b"\n"):  # a crawl killed mid-line: the rest is not there
                return
            raise ConfigError(f"{source}:{n}: not a JSON line") from None


def _open(path: str) -> IO[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (returned to the caller's with)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if fh.read(2) == _GZIP_MAGIC:
        fh.close()
        return cast("IO[bytes]", gzip.open(path, "rb"))
    fh.seek(0)
    return fh


def load_stats(path: str) -> dict[str, Any]:
    """The stats JSON (schema 1) of the crawl that left ``path`` behind: its page
    records (JSON lines, gzipped or not, a JSON array, CSV, SQLite or Parquet, as
    ``crawl -o`` writes them), its ``--state`` file, or its stats JSON."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if head == _SQLITE_MAGIC:
        return _from_sqlite(path)
    low = path.lower()
    if low.endswith(".csv"):
        return _from_rows(lambda: _csv_rows(path), path)
    if low.endswith(".parquet"):
        return _from_rows(lambda: _parquet_rows(path), path)
    try:
        with _open(path) as fh:
            first = fh.readline()
            try:
                d = orjson.loads(first)
            except orjson.JSONDecodeError:  # not one object a line: a whole JSON file?
                if first.lstrip().startswith((b"{", b"[")):
                    return _from_json(first + fh.read(), path)
                d = None
        if isinstance(d, dict) and d.get("schema") == SCHEMA and "url" not in d:
            return d  # a stats file on one line
        if isinstance(d, list):  # a JSON array on one line
            return _from_rows(lambda: d, path)
        return _from_lines(path, None)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _from_rows(rows: Callable[[], Iterable[Any]], path: str) -> dict[str, Any]:
    """Stats from page records read twice by ``rows()``: the crawl's start and end
    first, then the counts, so memory does not grow with the file."""
    span = _span(rows(), path)
    return stats_from_records(rows(), source=path, span=span).to_json()


def _from_lines(path: str, limit: int | None) -> dict[str, Any]:
    """Stats from a file of JSON lines (its first ``limit`` bytes)."""

    def rows() -> Iterator[dict[str, Any]]:
        with _open(path) as fh:
            yield from _lines(fh, path, limit)

    return _from_rows(rows, path)


def _csv_rows(path: str) -> Iterator[dict[str, Any]]:
    """A CSV of page records: empty cells are None (numbers are converted later)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield {k: (v if v != "" else None) for k, v in row.items()}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _parquet_rows(path: str) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("reading Parquet needs pyarrow: pip install 'loopcrawl[parquet]'") \
            from None
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _query(path: str, sql: str) -> Iterator[sqlite3.Row]:
    """The rows of ``sql`` on the SQLite file ``path``, opened read-only; an SQLite
    error is a ConfigError naming the file."""
    try:
        con = sqlite3.connect(read_only(path), uri=True, timeout=5)
        con.row_factory = sqlite3.Row
        try:
            yield from con.execute(sql)
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _from_sqlite(path: str) -> dict[str, Any]:
    """A --state file, or an SQLite output (``crawl -o pages.db``: table ``pages``)."""
    app = next(_query(path, "PRAGMA application_id"))[0]
    pages = list(_query(path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'pages'"))
    if app != 0 or not pages:
        return _from_state(path)
    return _from_rows(lambda: (dict(r) for r in _query(
        path, "SELECT * FROM pages ORDER BY rowid")), path)


def _from_json(data: bytes, path: str) -> dict[str, Any]:
    """A stats file, or page records as one JSON array (``crawl -o pages.json``)."""
    try:
        d = json.loads(data)
    except ValueError:
        raise ConfigError(f"{path}: not JSON") from None
    if isinstance(d, dict) and d.get("schema") == SCHEMA:
        return d
    if isinstance(d, list):
        return _from_rows(lambda: d, path)
    raise ConfigError(f"{path}: not a loopcrawl stats file (schema {SCHEMA})")


def _from_state(path: str) -> dict[str, Any]:
    from ..frontier.sqlite import read_status

    try:
        status = read_status(path)  # checks it is a sound state file, read-only
    except StateError as e:
        raise ConfigError(str(e)) from None
    for out, mark in status.outputs.items():
        if not Path(out).is_file():
            continue
        if isinstance(mark, int) and out.lower().endswith((".jsonl", ".jsonl.gz")):
            with _open(out) as fh:
                records = b'"fetched_at"' in fh.read(1 << 12)
            if records:  # page records (up to the checkpoint), not a spider's items
                return _from_lines(out, mark)
        elif out.lower().endswith((".csv", ".db", ".sqlite", ".sqlite3", ".json")):
            try:
                return load_stats(out)
            except ConfigError:
                continue  # a spider's items: not page records
    rows = list(_query(path, "SELECT url, depth, error FROM requests WHERE state != 0 "
                             "ORDER BY id"))
    st = stats_from_records([{"url": u, "depth": d, "fetched_at": 0.0, "error": e,
                              "status": None} for u, d, e in rows], source=path)
    st.rebuilt_from = "state"
    return st.to_json()
