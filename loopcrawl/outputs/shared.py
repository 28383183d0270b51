"""The outputs of one worker of a crawl shared by many (``loopcrawl worker``).

Two things differ from a crawl of one process, and only here, so the engine
is the same for both. A worker killed with SIGKILL may have written a page
without acking it; its lease expires and another worker fetches and writes
the page again. So each page record carries its request's fingerprint
(``fp``, 16 hex digits: what a reader drops repeats by). And what a page
wrote reaches the OS before its ack reaches Redis: the frontier calls
``flush`` before each batch of acks leaves (``RedisFrontier.before_acks``,
wired by ``CrawlRun``), or, for a frontier without that hook, every write is
flushed at once. A worker killed after an ack never loses what it wrote (a
machine that loses power may: the OS had not written it to disk). SQLite
commits without an fsync here (WAL, ``synchronous=NORMAL``): the commit
reaches the WAL file, which survives the process. Parquet cannot be flushed
(its footer is written at the end): ``loopcrawl worker`` refuses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..urls import fingerprint
from .base import Output, Role
from .sqlite import SqliteWriter

if TYPE_CHECKING:
    from ..http import Request
    from ..net.fetched import Fetched

__all__ = ["SharedCrawlOutput"]


class SharedCrawlOutput(Output):
    """``inner`` with the fingerprint in each page record; with ``flush_each``
    every write is flushed at once (else the caller flushes before acks).

    A page record is a link-follower crawl's: always a GET without a body,
    whose request fingerprint is its URL's (``urls.fingerprint``)."""

    def __init__(self, inner: Output, *, flush_each: bool = True) -> None:
        self.inner = inner
        self.path = inner.path
        self._now = flush_each
        if isinstance(inner, SqliteWriter):
            inner.commit_without_fsync()  # a commit a batch: no fsync each

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
