"""May a request to this host start now? Per-host politeness behind one seam.

The dispatcher (``politeness.Scheduler``) keeps the requests waiting for each
host and a heap of hosts ordered by when they may start. Whether a request
may start, and what each start, finish and server answer changes (places in
flight, ``--delay`` and Crawl-delay, Retry-After and throttling), is the
``HostGate``'s. ``LocalHostGate`` keeps it in this process, one ``HostSlot``
per host, updated as events happen and never rebuilt by scanning.

With several processes crawling one site, politeness must be shared, so the
same interface is what a coordinating process or Redis implements (see
docs/architecture.md). It is synchronous because the dispatcher asks it once
per page on the hot path; a remote gate answers from an allowance it holds
(places and turns granted ahead, returned in batches) and refreshes it off
that path.

Times are on the caller's clock (the event loop's ``time()``), passed in as
``now``: a remote gate turns its server's answers ("in 0.3 s") into it.
A turn is named by the lease token of the request that takes it, which is
unique among live leases however many processes share the frontier.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

__all__ = ["THROTTLE_MAX_DELAY", "THROTTLE_MIN_DELAY", "HostGate", "HostSlot", "LocalHostGate"]

_log = logging.getLogger("loopcrawl")

# Adaptive back-off for a host answering 429/503 (seconds between request
# starts): doubled per throttling answer within these bounds, x0.75 per success.
THROTTLE_MIN_DELAY = 0.25
THROTTLE_MAX_DELAY = 30.0

_NEVER = float("inf")


@dataclass(slots=True, eq=False)
class HostSlot:
    """The politeness state of one ``host:port``."""

    host: str
    concurrency: int
    delay: float  # seconds between request starts: base_delay, raised while throttled
    base_delay: float = 0.0  # max of --delay and Crawl-delay
    active: int = 0  # places taken: requests started and not yet finished
    next_at: float = 0.0  # before this, no request may start
    last_start: float = 0.0  # when the latest request started (or will, once claimed)
    throttled_until: float = 0.0  # Retry-After / back-off: no start before this
    # The turn handed out last, until its request goes on the wire or another
    # request claims a turn: only that request may start without waiting.
    turn: int | None = None

    def ready_at(self) -> float:
        return max(self.next_at, self.throttled_until)


class HostGate(Protocol):
    """Per-host politeness: places in flight, the delay between starts, back-off."""

    def try_start(self, host: str, now: float, turn: int) -> float:
        """Take one of ``host``'s places and its next turn, named ``turn``, if a
        request may start at ``now``: 0.0. Otherwise nothing is taken, and the
        result is when to ask again (inf: every place is taken; ask after a
        ``finish``)."""

    def ready_at(self, host: str) -> float:
        """When ``host`` may start its next request (inf while every place is taken)."""

    def started(self, host: str, turn: int, now: float) -> float:
        """The request that took ``turn`` goes on the wire: the seconds it must
        wait first. 0.0 if its turn still holds (the delay counts from now);
        if another request claimed a turn since, it claims the next one (inf
        as ``claim`` may answer)."""

    def claim(self, host: str, now: float) -> float:
        """Take ``host``'s next turn without a place (robots.txt, a redirect
        hop, a spent turn): the seconds to wait before going on the wire. The
        turn is reserved at once, so nothing else starts between it and the
        one before: every request to a host keeps the host's delay. inf: a
        shared gate cannot reserve it here; the caller awaits ``take_turn``."""

    async def take_turn(self, host: str, now: float) -> float:
        """``claim`` for a gate that answered it with inf: the turn must be
        reserved where the gate's state lives (another process, Redis)."""

    def answered(self, host: str, now: float) -> None:
        """A request that opened a connection to ``host`` has its answer: the
        delay counts from now (the server saw it only after the handshakes)."""

    def finish(self, host: str, now: float, backoff: float = 0.0) -> None:
        """A request that took a place is over; ``backoff`` > 0 keeps the host
        quiet that many seconds (Retry-After, 429, 503)."""

    def set_delay(self, host: str, delay: float) -> None:
        """Raise the host's delay (robots.txt Crawl-delay); never lower it."""

    def throttle(self, host: str) -> None:
        """The host answered 429 or 503: slow down (double the delay, bounded)."""

    def relax(self, host: str) -> None:
        """The host answered well: let a raised delay decay toward its base."""

    def slot(self, host: str) -> HostSlot | None:
        """The host's state, to read (the display); None for a host never seen."""

    def hosts(self) -> Collection[HostSlot]:
        """Every host's state, to read (the display, a few times a second)."""


class LocalHostGate:
    """``HostGate`` for one process: a ``HostSlot`` per host, in a dict."""

    def __init__(self, *, per_host: int, delay: float) -> None:
        self.per_host = per_host
        self.delay = delay
        self._slots: dict[str, HostSlot] = {}

    def _slot(self, host: str) -> HostSlot:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = HostSlot(host, self.per_host, self.delay, self.delay)
        return slot

    # try_start, ready_at and finish run once or twice per page: written out,
    # without helper calls.
    def try_start(self, host: str, now: float, turn: int) -> float:
        slot = self._slots.get(host) or self._slot(host)
        if slot.active >= slot.concurrency:
            return _NEVER
        at = slot.next_at if slot.next_at > slot.throttled_until else slot.throttled_until
        if at > now:
            return at
        slot.active += 1
        slot.last_start = now
        slot.next_at = now + slot.delay
        slot.turn = turn
        return 0.0

    def ready_at(self, host: str) -> float:
        slot = self._slots.get(host)
        if slot is None:
            return 0.0
        if slot.active >= slot.concurrency:
            return _NEVER
        return slot.next_at if slot.next_at > slot.throttled_until else slot.throttled_until

    def started(self, host: str, turn: int, now: float) -> float:
        slot = self._slots[host]
        if slot.turn != turn:
            return self.claim(host, now)
        slot.turn = None
        slot.last_start = now
        slot.next_at = max(slot.next_at, now + slot.delay)
        return 0.0

    def claim(self, host: str, now: float) -> float:
        slot = self._slot(host)
        slot.turn = None
        start = max(now, slot.ready_at())
        slot.last_start = start
        slot.next_at = start + slot.delay
        return start - now

    async def take_turn(self, host: str, now: float) -> float:
        return self.claim(host, now)

    def answered(self, host: str, now: float) -> None:
        slot = self._slot(host)
        slot.last_start = max(slot.last_start, now)
        slot.next_at = max(slot.next_at, now + slot.delay)

    def finish(self, host: str, now: float, backoff: float = 0.0) -> None:
        slot = self._slots[host]
        slot.active -= 1
        if backoff > 0:
            slot.throttled_until = max(slot.throttled_until, now + backoff)

    def set_delay(self, host: str, delay: float) -> None:
        slot = self._slot(host)
        slot.base_delay = max(slot.base_delay, delay)
        if delay > slot.delay:
            slot.delay = delay
            slot.next_at = max(slot.next_at, slot.last_start + delay)

    def throttle(self, host: str) -> None:
        slot = self._slot(host)
        slot.delay = min(max(slot.delay * 2, THROTTLE_MIN_DELAY), THROTTLE_MAX_DELAY)
        _log.info("%s answered 429 or 503: one request every %.2f s or slower from now on",
                  host, slot.delay)
        slot.next_at = max(slot.next_at, slot.last_start + slot.delay)

    def relax(self, host: str) -> None:
        slot = self._slots.get(host)
        if slot is not None and slot.delay > slot.base_delay:
            d = slot.delay * 0.75
            slot.delay = d if d > slot.base_delay + 0.01 else slot.base_delay

    def slot(self, host: str) -> HostSlot | None:
        return self._slots.get(host)

    def hosts(self) -> Collection[HostSlot]:
        return self._slots.values()  # a view: its len() costs nothing
