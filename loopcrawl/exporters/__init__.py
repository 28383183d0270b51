"""Writers of crawl output, chosen by file extension."""

from __future__ import annotations

from .jsonl import JsonlWriter

__all__ = ["JsonlWriter"]
