"""What happens to a response: the page handlers.

The engine fetches; a ``PageHandler`` decides what a response means. A crawl
without a spider follows links (``LinkFollower``, the hot path); a spider
crawl runs callbacks (``spider.run.SpiderRun``). The engine knows only this
contract, so neither mode branches inside the other.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .. import errors
from ..http import Request
from ..links import LinkParser
from ..net.robots import RobotsCache, RobotsUnavailable
from ..sitemaps import parse_sitemap
from ..urls import Scope, canonicalize, fingerprints, host_of

if TYPE_CHECKING:
    from ..frontier import Frontier
    from ..http import FetchRecord
    from ..net.fetched import Fetched
    from ..settings import Settings
    from .stats import CrawlStats
    from .traps import TrapGuard

__all__ = ["CrawlParts", "LinkFollower", "PageHandler", "seed_sitemaps"]


@dataclass(slots=True)
class CrawlParts:
    """The parts of a crawl a page handler may use (and nothing else of the engine)."""

    settings: Settings
    frontier: Frontier
    stats: CrawlStats
    traps: TrapGuard


class PageHandler(Protocol):
    """One crawl's answer to "what does this response mean?".

    The engine calls ``open`` once, then ``page`` for every response and
    ``failed`` for every request that ended without one, and ``emit`` as it
    acks a request (``drop`` if it abandons it), then ``close``.
    """

    scope: Scope  # redirect targets are checked against it too
    start_hosts: list[str]  # where --auth goes unless http_auth_hosts says (set by open)
    emits: bool  # False: emit() and drop() do nothing, and the engine skips emit()

    async def open(self) -> list[Request]:
        """The start requests (prepared: canonical, in scope); sets ``scope``."""

    async def page(self, req: Request, fetched: Fetched, rec: FetchRecord) -> None:
        """A response arrived: queue what it leads to and fill in ``rec``."""

    async def failed(self, req: Request, rec: FetchRecord) -> None:
        """``req`` ended without a response (``rec.error`` says why)."""

    def emit(self, req: Request) -> None:
        """``req`` is being acked: write what its page produced (items). No
        await may come between this and the ack, so a checkpoint never splits
        them."""

    def drop(self, req: Request) -> None:
        """``req`` was abandoned and will be fetched again: forget its output."""

    async def close(self, reason: str) -> None:
        """The crawl is over (``reason``: "finished", "shutdown", ...)."""


class LinkFollower:
    """A crawl without a spider: every HTML page's links within scope,
    depth and trap limits are queued; sitemaps list more pages."""

    emits = False  # a page's links are queued at once: nothing waits for the ack

    def __init__(self, parts: CrawlParts) -> None:
        s = parts.settings
        self._settings = s
        self._frontier = parts.frontier
        self._stats = parts.stats
        self._traps = parts.traps
        self.scope = Scope(s.scope, s.seeds, s.allow, s.deny)
        self.start_hosts = [host_of(u) for u in s.seeds]
        self._parser = LinkParser(s.max_links_per_page)

    async def open(self) -> list[Request]:
        return [Request(u) for u in self._settings.seeds]

    async def page(self, req: Request, f: Fetched, rec: FetchRecord) -> None:
        # The hot path: once per page, its links' steps written out here (an
        # awaited helper, or Counter.update with its isinstance(Mapping), costs
        # more than what it does).
        status = f.status
        if 200 <= status < 300:
            if req.meta and req.meta.get("sitemap"):
                await self._follow_sitemap(req, f, rec)
                return
            if not f.is_html:
                return
        else:
            if f.failed:
                rec.error = errors.HTTP_STATUS
                rec.message = f"HTTP {status}"
            return
        # Parsed already when a worker process fetched it (--workers).
        links = f.links if f.links is not None else self._parser.parse(f.url, f.body, f.charset)
        skipped = self._stats.skipped
        rec.title = links.title
        if links.size >= 0:  # a worker process read the page and kept its body
            rec.bytes = links.size
        if links.truncated:
            skipped["links_per_page_cap"] += 1
        if links.unfollowable:
            for kind, n in links.unfollowable.items():
                skipped[kind] += n
        urls = links.urls
        rec.links = len(urls) if links.found < 0 else links.found
        if not rec.links:
            return
        keep = self.followable
        fps = None
        if links.size >= 0:  # compared with its parent by the worker
            fam = self._traps.noted(f.url, links.size, links.hashes, links.words, links.similar)
        else:
            # Hashed once, for the trap guard and the seen check.
            fps = fingerprints(urls)
            fam = self._traps.page(f.url, req.referrer, f.body, urls, fps)
        if fam:
            keep = functools.partial(self._followable_similar, fam)
        depth = req.depth + 1
        max_depth = self._settings.depth
        if max_depth is not None and depth > max_depth:
            skipped["depth"] += len(urls)
            return
        if urls:
            await self._frontier.add_links(urls, depth, f.url, keep, fps)

    async def failed(self, req: Request, rec: FetchRecord) -> None:
        return None

    def emit(self, req: Request) -> None:
        return None

    def drop(self, req: Request) -> None:
        return None

    async def close(self, reason: str) -> None:
        return None

    def followable(self, urls: list[str]) -> list[str]:
        """The ``urls`` in scope and not in a trap; the others are counted.

        Only unseen links get here (``Frontier.add_links``): a link seen
        before passed these checks then, and they do not change."""
        kept = self.scope.filter(urls)
        if len(kept) < len(urls):
            self._stats.skipped["scope"] += len(urls) - len(kept)
        return self._traps.filter_links(kept, self._stats.skipped)

    def _followable_similar(self, fam: str, urls: list[str]) -> list[str]:
        """``followable`` on a page that barely differs from its parent: the
        trap guard's budget for its family decides how many are queued."""
        return self._traps.admit(fam, self.followable(urls), self._stats.skipped)

    async def _follow_sitemap(self, req: Request, f: Fetched, rec: FetchRecord) -> None:
        """Queue what a sitemap lists: child sitemaps, or pages (depth + 1)."""
        sm = parse_sitemap(f.body)
        if sm.error is not None:
            rec.error, rec.message = errors.INVALID_SITEMAP, sm.error
            return
        children = [u for x in sm.sitemaps if (u := canonicalize(x)) is not None]
        pages = [u for x in sm.urls if (u := canonicalize(x)) is not None]
        rec.links = len(children) + len(pages)
        if sitemaps := [Request(u, req.depth, req.url, meta={"sitemap": True})
                        for u in self.scope.filter(children)]:
            await self._frontier.add(sitemaps)
        if pages:
            await self._frontier.add_links(pages, req.depth + 1, req.url, self.followable)


async def seed_sitemaps(seeds: Sequence[str], robots: RobotsCache, frontier: Frontier) -> None:
    """Queue each seed host's sitemaps: robots.txt ``Sitemap:`` lines, else
    ``/sitemap.xml`` (``--sitemaps``)."""
    for seed in seeds:
        origin = seed[: seed.index("/", seed.index("//") + 2)]
        with contextlib.suppress(RobotsUnavailable):
            await robots.allowed(seed)
        found = [u for x in robots.sitemaps(host_of(seed))
                 if (u := canonicalize(x)) is not None]
        urls = found or [origin + "/sitemap.xml"]
        await frontier.add([Request(u, 0, meta={"sitemap": True}) for u in urls])
