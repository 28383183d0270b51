"""What a fetch answers, and the questions it asks the engine: plain data.

Apart from ``fetcher.py`` (which imports aiohttp) so that what only reads
responses (the engine, outputs, handlers, and the coordinator of ``--workers``,
which fetches nothing itself) does not import aiohttp: its import loads the
system's CA certificates into two SSL contexts, most of a process's start-up.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ErrorKind

if TYPE_CHECKING:
    from ..links import ResolvedLinks

__all__ = ["Fetched", "Hop", "RedirectCheck", "TurnWait"]


class Hop(enum.Enum):
    """A redirect check's verdict on one hop, when it does not refuse it."""

    FOLLOW = "follow"
    STOP = "stop"  # end the chain at the 3xx, which is recorded: the target is crawled elsewhere


# Waits until a request to ``url``'s host may go on the wire (its politeness
# turn: the scheduler's ``wait_turn``); each redirect hop asks it first.
TurnWait = Callable[[str], Awaitable[None]]

# Decides on one redirect hop: follow it, stop at the 3xx, or fail the request
# with that ErrorKind.
RedirectCheck = Callable[[str], Awaitable[Hop | ErrorKind]]

@dataclass(slots=True)
class Fetched:
    """A response, read in full (up to the size cap)."""

    url: str  # the final URL after redirects (canonical)
    status: int
    content_type: str  # the media type only, lower-case ("" when absent)
    charset: str | None
    body: bytes
    redirects: int = 0
    retry_after: float | None = None  # seconds, from a Retry-After header
    # What was exchanged on the last hop (spiders' Response, WARC records).
    headers: Mapping[str, str] | None = None
    request_headers: Mapping[str, str] | None = None
    method: str = "GET"
    request_body: bytes | None = None
    links: ResolvedLinks | None = None  # title and links, from a worker process (--workers)
    callback: bytes | None = None  # what a worker's spider callback yielded (pickled)

    @property
    def failed(self) -> bool:
        """A 4xx or 5xx answer, or no HTTP status at all (below 100: "HTTP/1.1
        000", which aiohttp's parser takes): the record's ``http_status``."""
        return self.status >= 400 or self.status < 100

    @property
    def is_html(self) -> bool:
        return self.content_type in ("text/html", "application/xhtml+xml") or (
            not self.content_type and self.body[:512].lstrip().lower().startswith(b"<")
        )
