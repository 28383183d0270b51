"""Choosing an output by file name, and JSON Lines for items."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .csv import CsvWriter
from .jsonl import JsonlWriter
from .sqlite import SqliteWriter
from .warc import WarcWriter

Exporter = JsonlWriter | CsvWriter | SqliteWriter | WarcWriter

# Format name -> file endings that choose it when --format is not given.
FORMATS: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".ndjson", ".json", ".jl"),
    "csv": (".csv",),
    "sqlite": (".db", ".sqlite", ".sqlite3"),
    "warc": (".warc", ".warc.gz"),
}


class JsonlItems(JsonlWriter):
    """Items as JSON lines (``-`` is standard output)."""

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        self.write(item)


def format_of(path: str, fmt: str | None = None) -> str:
    """The format for ``path``: ``fmt`` if given, else by its ending (stdout: jsonl)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        return "jsonl"
    low = path.lower()
    for name, endings in FORMATS.items():
        if low.endswith(endings):
            return name
    raise ConfigError(f"cannot tell the format of {path} from its name: give --format "
                      f"({', '.join(FORMATS)}) or end it in "
                      f"{', '.join(e for es in FORMATS.values() for e in es)}")


def open_exporter(path: str, fmt: str | None = None, *, resume_at: Any = None) -> Exporter:
    """An open writer for ``path``; ConfigError if it cannot be written.

    JSONL, CSV and SQLite take items (``write_item``); WARC takes every
    response (``write_response``). Close it when the crawl is over.
    ``resume_at``: the mark a crash-safe crawl's state recorded for this
    output (``SqliteFrontier.bind_outputs``): JSONL and SQLite only.
    """
    kind = format_of(path, fmt)
    if resume_at is not None and kind not in ("jsonl", "sqlite"):
        raise ConfigError(f"{path}: a {kind} output cannot be resumed; with --state use "
                          "JSONL or SQLite output")
    if kind == "jsonl":
        return JsonlItems(path, resume_at=resume_at)
    if path == "-":
        raise ConfigError(f"{kind} output needs a file, not standard output")
    if kind == "csv":
        return CsvWriter(path)
    if kind == "sqlite":
        return SqliteWriter(path, resume_at=resume_at)
    return WarcWriter(path)
