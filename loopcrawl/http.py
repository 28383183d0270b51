"""Requests and fetch records: pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .urls import fingerprint

__all__ = ["FetchRecord", "Request"]


@dataclass(slots=True)
class Request:
    """One URL to fetch. ``url`` is canonical (see ``urls.canonicalize``)."""

    url: str
    depth: int = 0
    referrer: str | None = None
    method: str = "GET"
    priority: int = 0
    retries: int = 0  # attempts already made and failed
    fp: int = 0  # fingerprint of (method, url, body); computed when left 0
    # None rather than an empty dict: thousands of Requests a second are built
    # for links that turn out to be seen already.
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.fp:
            self.fp = fingerprint(self.url, self.method)


@dataclass(slots=True)
class FetchRecord:
    """What became of one request: a page, or a failure with its kind.

    Every request the engine takes ends as exactly one record; the output
    and the summary are both built from these.
    """

    url: str
    depth: int
    referrer: str | None
    fetched_at: float  # Unix time the request started
    final_url: str | None = None
    status: int | None = None
    title: str | None = None
    content_type: str | None = None
    bytes: int = 0
    elapsed_ms: float = 0.0
    links: int = 0  # distinct crawlable links found on the page
    redirects: int = 0
    error: str | None = None  # a kind from ``errors`` (timeout, too_large, ...)
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "depth": self.depth,
            "referrer": self.referrer,
            "title": self.title,
            "content_type": self.content_type,
            "bytes": self.bytes,
            "fetched_at": round(self.fetched_at, 3),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "links": self.links,
        }
        if self.redirects:
            d["redirects"] = self.redirects
        if self.error is not None:
            d["error"] = self.error
            d["message"] = self.message
        return d
