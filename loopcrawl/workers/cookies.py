"""One cookie jar for a crawl over several processes.

With one process, a cookie a server sets on one response is sent with every
later request it applies to (one ``aiohttp.CookieJar``). Each worker process
has its own jar, so each one reports what a response sets (the raw
``Set-Cookie`` fields and the URL that set them) to the coordinator, which
passes them on to the other workers at once, ahead of any request it hands
out after that response: a request dispatched after a response that set a
cookie carries it, whichever worker sends it, as with one process; requests
already in flight go without it, as with one process. The coordinator keeps
the last ``Set-Cookie`` of each (host, name), so a worker started mid-crawl
(a replacement) begins with the crawl's cookies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aiohttp
from yarl import URL

from ..urls import host_of

__all__ = ["JarLog", "SharedJar"]


class SharedJar(aiohttp.CookieJar):
    """A worker's jar: what a response sets is stored, and reported with
    ``report(fields, url)``; ``apply`` stores what another worker's response set."""

    def __init__(self, report: Callable[[list[str], str], None]) -> None:
        super().__init__(unsafe=True)  # IP-address hosts too, as the crawl's own jar
        self._report = report

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        super().update_cookies_from_headers(headers, response_url)
        if headers:
            self._report(list(headers), str(response_url))

    def apply(self, fields: list[str], url: str) -> None:
        super().update_cookies_from_headers(fields, URL(url, encoded=True))


class JarLog:
    """The coordinator's copy of the crawl's cookies: the last ``Set-Cookie``
    field of each (host, cookie name), oldest first."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, fields: list[str], url: str) -> None:
        host = host_of(url)
        for f in fields:
            key = (host, f.split("=", 1)[0].strip())
            self._last.pop(key, None)  # to the end: applied after what it replaces
            self._last[key] = (f, url)

    def entries(self) -> list[tuple[list[str], str]]:
        return [([f], url) for f, url in self._last.values()]
