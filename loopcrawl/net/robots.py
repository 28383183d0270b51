"""robots.txt per host, fetched once, parsed with protego, cached.

What a response means follows RFC 9309 §2.3.1 and Google's documented
behaviour:
- 2xx: the rules apply (Crawl-delay too);
- 4xx except 429 ("unavailable"): no rules, everything is allowed; so for
  a 2xx that is no text (binary, or not the gzip its header says);
- 429, 5xx, timeouts and connection errors ("unreachable"): the host is
  treated as fully disallowed for ``robots_error_retry`` seconds, then
  robots.txt is asked for again. Pages of that host wait (retry) meanwhile
  rather than being dropped; when their retries run out they are recorded as
  ``robots_unreachable``.

A host that cannot be reached at all (connection refused, no such name, a
certificate refused, the proxy refusing) is not "unreachable" in RFC 9309's
sense of a server having trouble: its pages fail at once with that kind
(``errors.HOST_UNREACHABLE``), retried as a page would be (refused and DNS
briefly, a certificate not at all), instead of waiting out the window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from protego import Protego

from .. import errors
from ..errors import ErrorKind, FetchError, RobotsUnavailable
from ..settings import Settings
from ..urls import host_of
from .fetched import Fetched, TurnWait

__all__ = ["MAX_CRAWL_DELAY", "HostTurns", "RobotsCache", "RobotsStore", "RobotsUnavailable", "SharedAnswer",
           "SharedRobots"]

_MAX_ROBOTS_SIZE = 500 * 1024  # bytes; Google ignores rules past 500 KiB
_log = logging.getLogger("loopcrawl")
# A dead host whose next try may work (refused, no address, the proxy down),
# and one where it cannot (a certificate refused).
_ASK_AGAIN_SOON = errors.HOST_UNREACHABLE & errors.TRANSIENT
_FINAL = errors.HOST_UNREACHABLE - errors.TRANSIENT
_MAX_VERDICTS = 256  # answers kept per host (by path prefix, below), then forgotten
# The longest Crawl-delay kept: one request a minute (Heritrix caps it too). A
# robots.txt asking for more (Crawl-delay: 100000) would hold a crawl with the
# defaults for days a page; a host that wants no crawler says Disallow.
MAX_CRAWL_DELAY = 60.0


@dataclass(slots=True)
class _Entry:
    rules: Protego | None = None  # None: allow everything
    crawl_delay: float | None = None
    sitemaps: list[str] = field(default_factory=list)
    error: str | None = None  # unreachable: why
    kind: ErrorKind = errors.ROBOTS_UNREACHABLE  # and as what the pages fail
    retry_at: float = 0.0  # loop time when an unreachable robots.txt is asked again
    pending: asyncio.Future[None] | None = None
    # How many characters of a URL's path decide the rules' answer (_decisive);
    # -1: every URL is asked of protego. The answers by those characters:
    prefix: int = -1
    verdicts: dict[str, bool] = field(default_factory=dict)


@runtime_checkable
class RobotsStore(Protocol):
    """Where a resumable crawl keeps robots.txt between runs (``SqliteFrontier``)."""

    def robots_get(self, host: str) -> str | None:
        """The robots.txt kept for ``host`` ("" for none: a 4xx), if still fresh."""

    def robots_put(self, host: str, text: str) -> None:
        """Keep what ``host`` answered for its robots.txt ("" for no rules)."""


# What a fetcher of robots.txt for a shared store answers: the text to keep
# ("" for no rules), or an error ("\0kind\0message", which no robots.txt
# starts with: a body with a NUL in its first KiB is not read as one), and
# how long to keep it (None: for the crawl).
SharedAnswer = tuple[str, float | None]


@runtime_checkable
class SharedRobots(Protocol):
    """robots.txt shared by every worker of a crawl (Redis): fetched once per
    host, by one worker, while the others wait for its answer."""

    async def robots_once(self, host: str,
                          fetch: Callable[[], Awaitable[SharedAnswer]]) -> str:
        """The answer kept for ``host``; if there is none, one caller among
        all workers runs ``fetch`` and keeps its answer, the others wait for
        it (bounded: a claimer that dies lets another fetch)."""


class HostTurns(Protocol):
    """Per-host politeness as robots.txt fetches need it (``Scheduler``)."""

    async def wait_turn(self, host: str) -> None:
        """Return when a request to ``host`` may go on the wire."""

    def answered(self, host: str) -> None:
        """The request to ``host`` has its answer: its delay counts from now."""


class Fetches(Protocol):
    """What fetches robots.txt: a ``Fetcher``, or the worker processes'
    ``ProcessFetcher`` (``--workers``)."""

    async def fetch(self, url: str, *, max_size: int | None = None, truncate: bool = False,
                    wait_turn: TurnWait | None = None) -> Fetched: ...


class RobotsCache:
    """Answers "may this URL be fetched?" with at most one robots.txt fetch per
    host (none for a host whose robots.txt ``store`` kept from an earlier run,
    or that another worker fetched, with a ``SharedRobots`` store)."""

    def __init__(self, fetcher: Fetches, settings: Settings,
                 store: RobotsStore | SharedRobots | None = None,
                 turns: HostTurns | None = None) -> None:
        self._fetcher = fetcher
        # Each fetch of a host's robots.txt, the first and every re-fetch,
        # waits for the host's turn and keeps its delay like any request.
        self._turns = turns
        self._shared = store if isinstance(store, SharedRobots) else None
        self._store = store if isinstance(store, RobotsStore) else None
        self._settings = settings
        self._agent = settings.user_agent
        self._entries: dict[str, _Entry] = {}
        self.fetches = 0

    async def allowed(self, url: str) -> bool:
        """True if robots.txt of ``url``'s host lets us fetch it.

        Raises ``RobotsUnavailable`` while the host's robots.txt is unreachable.
        """
        host = host_of(url)
        entry = self._entries.get(host)
        if entry is None or entry.pending is not None or entry.error is not None:
            entry = await self._load(host, url)
        rules = entry.rules
        if rules is None:
            return True
        # The pages of a directory share the answer (``_decisive``): one
        # protego call for each, then a dictionary lookup.
        n = entry.prefix
        start = url.find("/", url.find("//") + 2)
        if n < 0 or start < 0 or "/robots.txt" in url:
            return bool(rules.can_fetch(url, self._agent))
        key = url[start:start + n]
        verdict = entry.verdicts.get(key)
        if verdict is None:
            verdict = bool(rules.can_fetch(url, self._agent))
            if "%" not in key and "#" not in key:
                if len(entry.verdicts) >= _MAX_VERDICTS:
                    entry.verdicts.clear()  # bounded: a host with many directories
                entry.verdicts[key] = verdict
        return verdict

    def crawl_delay(self, host: str) -> float | None:
        e = self._entries.get(host)
        return e.crawl_delay if e else None

    def sitemaps(self, host: str) -> list[str]:
        e = self._entries.get(host)
        return list(e.sitemaps) if e else []

    async def _load(self, host: str, url: str) -> _Entry:
        loop = asyncio.get_running_loop()
        entry = self._entries.get(host)
        if entry is not None and entry.pending is not None:
            await asyncio.shield(entry.pending)
            return self._check(entry, loop.time())
        if entry is not None and entry.error is not None and loop.time() < entry.retry_at:
            return self._check(entry, loop.time())
        entry = self._entries[host] = _Entry(pending=loop.create_future())
        try:
            await self._fetch_into(entry, url[: url.index("/", url.index("//") + 2)])
        finally:
            fut, entry.pending = entry.pending, None
            if fut is not None and not fut.done():
                fut.set_result(None)
        if entry.error is not None:
            # A host that refused or has no address is asked again at its
            # page's next try (the page's back-off paces it); one that answers
            # badly, or whose certificate failed, after the window.
            wait = 0.0 if entry.kind in _ASK_AGAIN_SOON else self._settings.robots_error_retry
            entry.retry_at = loop.time() + wait
            _log.info("%s: %s; asked again %s", host, entry.error,
                      f"in {wait:.0f} s" if wait else "at the next page's try")
        return self._check(entry, loop.time())

    def _check(self, entry: _Entry, now: float) -> _Entry:
        if entry.error is not None:
            raise RobotsUnavailable(entry.error, entry.kind, None if entry.kind in _FINAL
                                    else max(0.0, entry.retry_at - now))
        return entry

    async def _fetch_into(self, entry: _Entry, origin: str) -> None:
        store = self._store
        host = origin.split("/", 3)[2]
        if store is not None and (kept := store.robots_get(host)) is not None:
            self._apply(entry, kept)
            return
        if self._shared is not None:
            got = await self._shared.robots_once(host, lambda: self._fetch_shared(entry, origin))
            if got.startswith("\0"):  # the fetcher's error, for every worker
                _, kind, entry.error = got.split("\0", 2)
                entry.kind = ErrorKind(kind)
            elif entry.rules is None:  # not read here already (this worker fetched it)
                self._apply(entry, got)
            return
        await self._fetch(entry, origin, host)

    async def _fetch_shared(self, entry: _Entry, origin: str) -> SharedAnswer:
        """Fetch for every worker: the answer to keep, and for how long (an
        error for its window, at least a second)."""
        text = await self._fetch(entry, origin, origin.split("/", 3)[2])
        if entry.error is not None:
            keep = 1.0 if entry.kind in _ASK_AGAIN_SOON else self._settings.robots_error_retry
            return f"\0{entry.kind.value}\0{entry.error}", max(1.0, keep)
        return text or "", None

    async def _fetch(self, entry: _Entry, origin: str, host: str) -> str | None:
        """Fetch robots.txt into ``entry``; the text read ("" for no rules),
        None when nothing is to be kept (an error, an unfollowable redirect)."""
        store = self._store
        self.fetches += 1
        turns = self._turns
        if turns is not None:
            await turns.wait_turn(host)
        try:
            r = await self._fetcher.fetch(
                origin + "/robots.txt", max_size=_MAX_ROBOTS_SIZE, truncate=True,
                wait_turn=self._hop if turns is not None else None)
        except FetchError as e:
            if e.kind in errors.REDIRECT_FAILURES:
                # RFC 9309 §2.3.1.2: unfollowable redirects mean "unavailable"
                _log.info("%s: robots.txt redirects where it cannot be followed (%s): "
                          "everything allowed", host, e)
                return None
            if e.kind == errors.CONTENT_ENCODING_ERROR:
                # A 2xx whose body is not what its Content-Encoding says
                # cannot be read as text, as a binary one cannot: no rules
                # (asking again gets the same body; an error status counts
                # as such: the fetcher answers it with an empty body).
                _log.info("%s: robots.txt cannot be read (%s): everything allowed", host, e)
                return None
            if e.kind in errors.HOST_UNREACHABLE:
                entry.error, entry.kind = f"robots.txt: {e}", e.kind
            else:
                entry.error = f"robots.txt unreachable: {e}"
            return None
        finally:
            if turns is not None:
                turns.answered(host)
        if r.status == 429 or r.status >= 500:
            entry.error = f"robots.txt answered {r.status}"
            return None
        text = ""  # "unavailable" (4xx), or binary, not a robots.txt: no rules
        if 200 <= r.status < 300 and b"\0" not in r.body[:1024]:
            # utf-8-sig: a byte-order mark (Windows editors write one) is not
            # part of the first line, or "User-agent: *" is no group and every
            # rule is lost (Google's parser skips it too).
            text = r.body.decode("utf-8-sig", "replace")
        _log.info("%s: robots.txt answered %d%s", host, r.status,
                  f" ({len(r.body):,} bytes)" if text else ": no rules, everything allowed")
        if store is not None:
            store.robots_put(host, text)
        self._apply(entry, text)
        return text

    async def _hop(self, url: str) -> None:
        """A redirect hop of robots.txt waits for its host's turn too."""
        assert self._turns is not None
        await self._turns.wait_turn(host_of(url))

    def _apply(self, entry: _Entry, text: str) -> None:
        """Read the rules of a robots.txt into ``entry`` ("": no rules)."""
        if not text:
            return
        try:
            rules = Protego.parse(text)
        except Exception:  # protego on hostile input: no usable rules
            return
        entry.rules = rules
        entry.prefix = _decisive(rules, self._agent)
        delay = rules.crawl_delay(self._agent)
        entry.crawl_delay = min(float(delay), MAX_CRAWL_DELAY) if delay else None
        if delay and delay > MAX_CRAWL_DELAY:
            _log.info("robots.txt asks for a Crawl-delay of %g s: %g s kept", delay,
                      MAX_CRAWL_DELAY)
        entry.sitemaps = list(rules.sitemaps)


def _decisive(rules: Protego, agent: str) -> int:
    """How many characters of a URL's path and query decide what ``rules``
    answer for ``agent``, or -1 when no such bound holds.

    When every rule of the group that applies is a plain path (no ``*``, no
    ``$`` end, protego's own ``Allow: /dir/index.html`` -> ``/dir/$`` included),
    a rule applies exactly when it is a prefix of the path (quoted), so the
    first ``n`` characters (``n``, the longest rule) decide, as long as they
    hold no ``%`` (unquoting could shift them): ``RobotsCache.allowed`` keeps
    one answer for each such prefix, and the pages of a directory cost one
    protego call for all of them. Read from protego's parsed rules (private
    names): anything unexpected there is -1, protego for every URL."""
    try:
        group = rules._get_matching_rule_set(agent)
        if group is None:
            return 0  # no group for us: everything allowed
        n = 0
        for rule in group._rules:
            pattern = rule.value
            if pattern._contains_asterisk or pattern._contains_dollar:
                return -1
            n = max(n, len(pattern._pattern))
        return n
    except (AttributeError, TypeError):
        return -1
