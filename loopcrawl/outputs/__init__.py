"""Where a crawl's output goes: one set of roles, one registry by file name.

Every format is an ``Output`` that declares the roles it takes (page
records, items, responses) and whether a ``--state`` checkpoint can cut it
back (``resumable``). ``open_outputs`` picks the format by extension (or
``--format``) and opens them all, for ``crawl``, ``run`` and code alike.
docs/output.md describes the formats and the columns of a page record.
"""

from __future__ import annotations

from .base import PAGE_COLUMNS, PAGE_FIELDS, ByteFile, Mode, Output, Role, page_values
from .csv import CsvWriter
from .json import JsonWriter
from .jsonl import JsonlItems, JsonlWriter
from .parquet import ParquetWriter
from .registry import (
    FORMATS,
    Outputs,
    OutputSpec,
    check_path,
    format_of,
    open_output,
    open_outputs,
    parse_outputs,
    resumable_formats,
)
from .sqlite import SqliteWriter
from .warc import WarcWriter

__all__ = ["FORMATS", "PAGE_COLUMNS", "PAGE_FIELDS", "ByteFile", "CsvWriter", "JsonWriter",
           "JsonlItems", "JsonlWriter", "Mode", "Output", "OutputSpec", "Outputs",
           "ParquetWriter", "Role", "SqliteWriter", "WarcWriter", "check_path", "format_of", "open_output",
           "open_outputs", "page_values", "parse_outputs", "resumable_formats"]
