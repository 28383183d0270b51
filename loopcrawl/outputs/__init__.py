"""Writers of crawl output, chosen by file extension (``open_exporter``).

Page records: ``JsonlWriter``. Items: ``JsonlItems``, ``CsvWriter``,
``SqliteWriter`` (``write_item``). Every response: ``WarcWriter``
(``write_response``).
"""

from __future__ import annotations

from .csv import CsvWriter
from .items import FORMATS, JsonlItems, format_of, open_exporter
from .jsonl import JsonlWriter
from .sqlite import SqliteWriter
from .warc import WarcWriter

__all__ = ["FORMATS", "CsvWriter", "JsonlItems", "JsonlWriter", "SqliteWriter", "WarcWriter",
           "format_of", "open_exporter"]
