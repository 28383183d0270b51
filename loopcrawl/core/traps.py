"""Crawler traps: URL spaces without end, and the limits that end them.

Three kinds of check, placed where they are cheapest:
- on links, before they reach the frontier (so a trap never fills memory):
  URL length and repeated path segments (``/a/a/a/a/``, ``/x/y/x/y/x/y``).
  Session ids never make a new URL: ``urls.strip_sessions`` removes them
  when a link is canonicalized.
- on pages, once parsed: a page that barely differs from the page that
  linked to it is one step of an endless space (the next month of a
  calendar, page N+1 past the end of a listing, the same page under a new
  session id or a longer query, a soft 404 one segment deeper). Such
  "similar" pages are counted per host and first path segment; past
  ``max_similar_pages`` their links are no longer followed, and links
  queued from them are not fetched. Pages that carry new content (a real
  listing, however long) never count: depth alone is never the signal.
- at fetch time, on URLs already deduplicated: distinct query strings per
  path and pages per host.
Each stop is counted under its own name (``TrapGuard.stops``).

"Barely differs" is measured in two steps, the cheap one first. Every page
keeps its length and its links' hashes (8 bytes a link); a page whose
length is close to its parent's and that links to at most ``NEW_LINKS`` URLs
its parent did not is then read for words: its HTML lower-cased and split
on whitespace and punctuation, month and weekday names dropped (a
calendar's next page names another month). The page is
similar when at most ``NEW_WORDS`` of its words are not on its parent (a
4096-bit sketch, kept for the pages that were read). A page of an ordinary
site links to other pages than its parent does, so it is rarely read: the
figures are in docs/hardening.md.
"""

from __future__ import annotations

import re
import struct
from collections import Counter, deque

import xxhash

from ..settings import Settings
from ..urls import fingerprints, host_of

_pack = struct.pack

__all__ = ["NEW_LINKS", "NEW_WORDS", "Parent", "TrapGuard", "compare", "link_hashes", "repeats",
           "sketch"]

# A page with at most this many words its parent does not have is "similar".
# Numbers count: a listing whose items differ only in their numbers brings a
# dozen new ones a page, a calendar's next month or page N+1 of nothing 2-5.
NEW_WORDS = 8
# Pages with more links than this that their parent did not have are not read.
NEW_LINKS = 8
# Pages remembered (length, sketches, family) for their children: FIFO beyond.
_MAX_PAGES = 1 << 16
# ... and their link hashes, in bytes, at most: FIFO beyond. 65,536 pages of
# ``max_links_per_page`` (10,000) links would hold 5 GB; this holds ~840 such
# pages, or the 65,536 pages of a site with 128 links a page.
_MAX_LINK_BYTES = 64 << 20
# Only this much of a page is read for its words.
_SKETCH_BYTES = 256 * 1024
_WORD_BITS = 4096
_PUNCTUATION = b"<>\"'=/?&;:,.!()[]{}"
_PUNCTUATION_AS_SPACE = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))
_CALENDAR_WORDS = frozenset((b"january", b"february", b"march", b"april", b"may", b"june", b"july",
                   b"august", b"september", b"october", b"november", b"december",
                   b"monday", b"tuesday", b"wednesday", b"thursday", b"friday",
                   b"saturday", b"sunday", b"jan", b"feb", b"mar", b"apr", b"jun", b"jul",
                   b"aug", b"sep", b"oct", b"nov", b"dec", b"mon", b"tue", b"wed", b"thu",
                   b"fri", b"sat", b"sun"))


def repeats(url: str, limit: int) -> bool:
    """True if one path segment occurs more than ``limit`` times."""
    path = url.split("/", 3)[3].split("?", 1)[0] if url.count("/") > 3 else ""
    segments = [p for p in path.split("/") if p]
    if len(segments) <= limit:
        return False
    return max(Counter(segments).values()) > limit


def sketch(body: bytes) -> int:
    """The words of an HTML page as a 4096-bit set (see the module docstring)."""
    words = set(body[:_SKETCH_BYTES].lower().translate(_PUNCTUATION_AS_SPACE).split())
    words.difference_update(_CALENDAR_WORDS)
    bits = 0
    for h in map(hash, words):
        bits |= 1 << (h & (_WORD_BITS - 1))
    return bits


def link_hashes(urls: list[str]) -> bytes:
    """The hashes of the URLs a page links to (Python has them cached), packed
    as C ``ssize_t``s: 8 bytes a link. ``struct`` packs ``hash()``'s own type
    in one C loop; an ``array('q')`` converted each link through the generic
    argument parser, at twice the cost. A worker process (``--workers``)
    keys its links by URL, so their ``hash()`` is what it has; a crawl in one
    process has their fingerprints instead (``TrapGuard.page``)."""
    return _pack(f"{len(urls)}n", *map(hash, urls))


def _new_links(hashes: bytes, parent: bytes) -> int:
    """How many of a page's links (their ``link_hashes``) the parent did not link to."""
    return len(set(memoryview(hashes).cast("n")).difference(  # type: ignore[call-overload]
        memoryview(parent).cast("n")))  # type: ignore[call-overload]


# A page as its children are compared with it: length, link hashes, word
# sketch (0 unless it was read), family ("" unless similar to its own parent).
Parent = tuple[int, bytes, int, str]


def compare(body: bytes, hashes: bytes, parent: Parent | None) -> tuple[int, bool]:
    """A page's word sketch (0 when it is not read) and whether it barely
    differs from ``parent`` (``TrapGuard.page`` has the same steps written
    out): lengths within 1/16 (or 256 bytes), at most ``NEW_LINKS`` new
    links, then at most ``NEW_WORDS`` new words. A worker process
    (``--workers``) compares the pages it parsed, so their bodies stay there."""
    if parent is None:
        return 0, False
    n, pn = len(body), parent[0]
    if (abs(n - pn) <= (256 if pn < 4096 else pn >> 4)
            and _new_links(hashes, parent[1]) <= NEW_LINKS):
        words = sketch(body)
        return words, bool(parent[2]) and (words & ~parent[2]).bit_count() <= NEW_WORDS
    return 0, False


def family(url: str) -> str:
    """Where similar pages are counted: ``host/first-segment`` (digits as 0)."""
    rest = url.split("/", 3)
    first = rest[3].split("?", 1)[0].split("/", 1)[0] if len(rest) > 3 else ""
    if any(c.isdigit() for c in first):
        first = re.sub(r"[0-9]+", "0", first)
    return rest[2] + "/" + first


class TrapGuard:
    """The crawl's trap checks and their counters (``stops``, by reason)."""

    def __init__(self, settings: Settings) -> None:
        self.max_length = settings.max_url_length
        self.max_repeats = settings.max_repeated_segments
        self.max_variants = settings.max_query_variants
        self.max_per_host = settings.max_pages_per_host
        self.max_similar = settings.max_similar_pages
        # Keyed by a 64-bit hash of the path: 8 bytes of key, not the string.
        self._variants: dict[int, int] = {}
        self._per_host: Counter[str] = Counter()
        # A URL needs this many '/' to have more segments than the limit.
        self._slashes = 3 + self.max_repeats
        # Pages whose children may still come: hash of URL -> (length, link
        # hashes, word sketch or 0, family if similar to its own parent or "").
        self._pages: dict[int, Parent] = {}
        # Their keys, oldest first: dropping a dict's first key with
        # next(iter()) walks the holes earlier drops left (~50 µs a page once
        # full, until the dict is rebuilt); a deque pops in O(1).
        self._order: deque[int] = deque()
        self._link_bytes = 0  # of the link hashes in _pages
        self._similar: Counter[str] = Counter()  # links queued from similar pages
        self.stops: Counter[str] = Counter()  # requests and pages stopped, by setting

    def filter_links(self, urls: list[str], skipped: Counter[str]) -> list[str]:
        """The links worth queueing; the others are counted in ``skipped``."""
        max_length, slashes = self.max_length, self._slashes
        ok = [u for u in urls if len(u) <= max_length and u.count("/") < slashes]
        if len(ok) == len(urls):
            return ok
        for u in urls:
            if len(u) > max_length:
                skipped["trap_url_length"] += 1
            elif u.count("/") >= slashes:
                if repeats(u, self.max_repeats):
                    skipped["trap_repeated_segments"] += 1
                else:
                    ok.append(u)
        return ok

    def at_fetch(self, url: str) -> str | None:
        """Why ``url`` (deduplicated already) must not be fetched, or None."""
        if self.max_per_host is not None:
            host = host_of(url)
            n = self._per_host[host] = self._per_host[host] + 1
            if n > self.max_per_host:
                self.stops["max_pages_per_host"] += 1
                return f"more than {self.max_per_host} pages on {host} (max_pages_per_host)"
        if self.max_variants is not None and "?" in url:
            key = xxhash.xxh3_64_intdigest(url.split("?", 1)[0].encode())
            n = self._variants[key] = self._variants.get(key, 0) + 1
            if n > self.max_variants:
                self.stops["max_query_variants"] += 1
                return (f"more than {self.max_variants} query strings on one path "
                        "(max_query_variants)")
        return None

    def page(self, url: str, referrer: str | None, body: bytes, links: list[str],
             fps: list[int] | None = None) -> str:
        """Note a fetched HTML page and its ``links``; its family if it barely
        differs from the page that linked to it (``referrer``), else "".

        ``url`` is where the page was found (after redirects). The links of a
        page with a family go through ``admit``. The page keeps its links'
        fingerprints (``fps``, or computed), packed as unsigned 64-bit
        integers: the link follower passes those its seen check takes, so a
        page's links are hashed once for both (their ``hash()`` made ~30 ints
        a page more, ~14k instructions). A crawl notes every page here, or
        every page in its worker processes (``noted``, with their
        ``link_hashes``), never some of each."""
        # Once per page: written out, no helper calls. Pages are keyed by
        # hash(url): the referrer is the parent's own URL string, whose hash
        # Python has cached since the parent's turn here.
        if self.max_similar is None:
            return ""
        n = len(body)
        if fps is None:
            fps = fingerprints(links)
        hashes = _pack(f"{len(fps)}Q", *fps)
        pages = self._pages
        words, fam = 0, ""
        if referrer is not None and (parent := pages.get(hash(referrer))) is not None:
            pn = parent[0]
            # Lengths within 1/16 (or 256 bytes), then few new links: read its words.
            if abs(n - pn) <= (256 if pn < 4096 else pn >> 4):
                # _new_links, from the ints in hand (half the ints to make).
                new = set(fps)
                new.difference_update(memoryview(parent[1]).cast("Q"))  # type: ignore[call-overload]
                if len(new) <= NEW_LINKS:
                    words = sketch(body)
                    if parent[2] and (words & ~parent[2]).bit_count() <= NEW_WORDS:
                        fam = family(url)
        self._remember(url, (n, hashes, words, fam))
        return fam

    def parent(self, referrer: str | None) -> Parent | None:
        """The record of the page ``referrer`` that its children are compared
        with (``compare``); None when unknown or the check is off. It goes to
        the worker process that fetches a child (``--workers``)."""
        if referrer is None or self.max_similar is None:
            return None
        return self._pages.get(hash(referrer))

    def noted(self, url: str, n: int, hashes: bytes | None, words: int, similar: bool) -> str:
        """``page`` for a page a worker process compared with its parent: note
        it (``n`` bytes, its links' ``hashes``, its ``words``); its family if
        ``similar``, else ""."""
        if self.max_similar is None or hashes is None:
            return ""
        fam = family(url) if similar else ""
        self._remember(url, (n, hashes, words, fam))
        return fam

    def _remember(self, url: str, page: Parent) -> None:
        """Keep ``page`` for its children, forgetting the oldest past _MAX_PAGES
        pages or _MAX_LINK_BYTES of link hashes. A page noted again leaves its
        older place in _order empty."""
        key = hash(url)
        old = self._pages.pop(key, None)
        size = self._link_bytes + len(page[1]) - (len(old[1]) if old is not None else 0)
        if len(self._order) >= _MAX_PAGES or size > _MAX_LINK_BYTES:
            size = self._forget(size)
        self._link_bytes = size
        self._pages[key] = page
        self._order.append(key)

    def _forget(self, size: int) -> int:
        """Forget the oldest pages until a page more fits in _MAX_PAGES and
        ``size`` (the link bytes kept, the new page's included) is within
        _MAX_LINK_BYTES, or none is left (a page with more link bytes than that
        is kept alone); the link bytes left."""
        pages, order = self._pages, self._order
        while order and (len(order) >= _MAX_PAGES or size > _MAX_LINK_BYTES):
            gone = pages.pop(order.popleft(), None)
            if gone is not None:
                size -= len(gone[1])
        return size

    def admit(self, fam: str, urls: list[str], skipped: Counter[str]) -> list[str]:
        """The new links of a similar page of family ``fam`` that may be
        queued: ``max_similar_pages`` in all per family, so an endless space
        costs that many requests (and the few pages before it looked alike).
        The others are not followed, and not marked seen: a page that is no
        trap may still lead to them."""
        assert self.max_similar is not None
        used = self._similar[fam]
        room = max(0, self.max_similar - used)
        if room >= len(urls):
            self._similar[fam] = used + len(urls)
            return urls
        self._similar[fam] = used + room
        cut = len(urls) - room
        skipped["trap_similar_pages"] += cut
        self.stops["max_similar_pages"] += cut
        return urls[:room]
