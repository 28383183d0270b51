"""The outputs of one worker of a crawl shared by many (``loopcrawl worker``).

Two things differ from a crawl of one process, and only here, so the engine
is the same for both. A worker killed with SIGKILL may have written a page
without acking it; its lease expires and another worker fetches and writes
the page again. So each page record carries its request's fingerprint
(``fp``, 16 hex digits: what a reader drops repeats by), and every write to
a byte file (JSONL, JSON, CSV, WARC: ``FileOutput``) is handed to the OS at
once, before the engine acks the request: a worker killed after an ack never
loses what it wrote (a machine that loses power may: the OS had not written
it to disk). One ``write`` a page. SQLite and Parquet keep their own pace (a
commit is an fsync; a Parquet row group per page would ruin the file), so a
killed worker loses their rows since the last commit (docs/distributed.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..urls import fingerprint
from .base import FileOutput, Output, Role

if TYPE_CHECKING:
    from ..http import Request
    from ..net.fetcher import Fetched

__all__ = ["SharedCrawlOutput"]


class SharedCrawlOutput(Output):
    """``inner`` with the fingerprint in each page record, a byte file flushed
    at every write.

    A page record is a link-follower crawl's: always a GET without a body,
    whose request fingerprint is its URL's (``urls.fingerprint``)."""

    def __init__(self, inner: Output) -> None:
        self.inner = inner
        self.path = inner.path
        self._now = isinstance(inner, FileOutput)  # its flush is one write

    @property
    def count(self) -> int:  # type: ignore[override]
        return self.inner.count

    def takes(self, role: Role) -> bool:
        return self.inner.takes(role)

    def write_record(self, record: dict[str, Any]) -> None:
        if "fp" not in record:  # the same dict goes to every output
            record["fp"] = f"{fingerprint(record['url']):016x}"
        self.inner.write_record(record)
        if self._now:
            self.inner.flush()

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        self.inner.write_item(item, kind, fields)
        if self._now:
            self.inner.flush()

    def write_response(self, request: Request, fetched: Fetched) -> None:
        self.inner.write_response(request, fetched)
        if self._now:
            self.inner.flush()

    def flush(self) -> None:
        self.inner.flush()

    def fsync(self) -> None:
        self.inner.fsync()

    def close(self) -> None:
        self.inner.close()
