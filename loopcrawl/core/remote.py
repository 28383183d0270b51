"""How the engine hands its requests to worker processes (``--workers N``).

The engine is the one-process engine with a ``ProcessFetcher`` in place of
its ``Fetcher``; ``RemoteFetch`` decides, once per crawl, what the workers do
besides fetching: read an HTML page's links (a crawl without a spider), run
the spider's callbacks (a spider crawl whose spider they can load), and
whether headers come back (WARC outputs and spiders read them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from ..http import Request
from ..spider.remote import spec_of
from ..spider.run import SpiderRun
from ..workers import ProcessFetcher
from .pages import LinkFollower, PageHandler

if TYPE_CHECKING:
    from ..net.fetched import Fetched, RedirectCheck, TurnWait
    from ..settings import Settings
    from .traps import TrapGuard

__all__ = ["RemoteFetch"]


class RemoteFetch:
    """The worker processes of one crawl, and what each request asks of them."""

    def __init__(self, settings: Settings, handler: PageHandler, archives: bool,
                 traps: TrapGuard) -> None:
        # The link follower's pages are parsed where they are fetched.
        self._parse = isinstance(handler, LinkFollower)
        self._traps = traps  # a parsed page is compared with its parent where it is
        self._call: Callable[[Request], bytes | None] | None = None
        spec = None
        if isinstance(handler, SpiderRun) and (spec := spec_of(handler.spider)) is not None:
            self._call = handler.remote_call  # the callbacks run in the workers
        self.fetcher = ProcessFetcher(settings, settings.workers, spider=spec,
                                      full=archives or not self._parse)

    def fetch(self, req: Request, headers: Mapping[str, str] | None,
              check_redirect: RedirectCheck, wait_turn: TurnWait) -> Awaitable[Fetched]:
        """``req`` fetched by a worker: the future of its answer (``ProcessFetcher.submit``)."""
        parse = self._parse and not (req.meta and req.meta.get("sitemap"))
        return self.fetcher.submit(
            req.url, check_redirect, None, False, req.method, headers, req.body or None,
            req.cookies, wait_turn, parse, req.depth,
            self._call(req) if self._call is not None else None,
            self._traps.parent(req.referrer) if parse else None)
