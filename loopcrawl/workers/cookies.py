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

A worker's jar (``child.SharedJar``, an ``aiohttp.CookieJar``) lives with the
worker: the coordinator, which fetches nothing, does not import aiohttp.
"""

from __future__ import annotations

from ..urls import host_of

__all__ = ["JarLog"]


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
