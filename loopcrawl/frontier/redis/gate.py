"""``RedisHostGate``: per-host politeness held across every worker of a crawl.

The dispatcher asks its gate once per page, synchronously (``core/hostgate``):
a round trip to Redis per question would cost more than the page. So each
worker holds an *allowance* that Redis granted it, and answers from it:

- **Places** (``--per-host``). Redis counts the places of each host granted
  to workers (at most ``per_host`` in all) and which worker holds how many.
  A worker that wants to start a request and has no free place of its own
  asks for more (doubling while the demand lasts), uses them for request
  after request without asking again, and gives back what it has not used
  for ``linger`` seconds, or what exceeds its fair share once others wait.
  So at any moment at most ``per_host`` requests are in flight across all
  workers, exactly, and a crawl without a delay costs no round trip per page.
  Waiters are served first come first served; while any wait, each worker's
  share is ``per_host`` over the workers holding or wanting places.
- **Places are leases.** A worker's places carry a deadline (``ttl``, 30 s),
  pushed on by its next sync; a worker that dies (SIGKILL, a lost machine)
  stops pushing it, and the first sync of the host by anyone after the
  deadline takes its places back.
- **Turns** (``--delay``, Crawl-delay, the 429/503 back-off). While a host
  has a delay, each start needs a turn reserved on the server: the script
  hands out ``max(now, next, until)`` and moves ``next`` on by the delay,
  so turns are the delay apart on the server's clock whichever worker takes
  them. A worker maps the server's clock to its own loop's by the latest
  answer (server time read before the answer arrived: a turn is never
  early, and late by at most a round trip). The next turn is asked for when
  a request waits, and comes back well before it is due when the delay is
  longer than a round trip. Robots.txt, redirect hops and requests whose
  turn was spent take one too (``take_turn``: ``claim`` answers inf to say
  "ask the server").
- **What the server says about the host** — its delay (raised by anyone's
  429/503, lowered by successes), its base (the largest Crawl-delay seen),
  and "no start before" (Retry-After) — comes back with every sync. Each
  host with places held is synced every ``quantum`` (0.25 s) in one script
  call for all such hosts; a worker whose last answer is older than two
  quanta starts nothing more on that host until it hears again (a worker
  cut off from Redis pauses; its places expire for the others). So another
  worker's Retry-After or throttling reaches every worker within about a
  quantum; its own events are sent at once.
- **A Redis restarted without persistence** forgets the places: each worker
  hears that it holds none at its next sync and asks again, so until the
  requests then in flight end, a host can see up to twice its limit.

Everything a worker tells Redis goes in batches: the hosts that need an
answer are collected while a sync is in flight and sent together (one
round trip, KEYS three per host, all in the crawl's hash slot), through
``Reconnecting`` (a lost server pauses the gate; a script run twice changes
nothing: see ``_gate_lua.py``). The state of each host, as this worker last
heard it, is a ``RemoteSlot`` (a ``HostSlot``, for the display).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from ...core.hostgate import THROTTLE_MAX_DELAY, THROTTLE_MIN_DELAY, HostSlot
from ...errors import StateError
from . import _gate_lua as lua
from ._gate_state import GateStats, RemoteSlot

if TYPE_CHECKING:
    from ._reconnect import Reconnecting
    from .keys import CrawlKeys

__all__ = ["GateStats", "RedisHostGate", "RemoteSlot"]

_log = logging.getLogger("loopcrawl")
_NEVER = float("inf")
_ASK = 0.002  # seconds: when to look again while an answer is on its way
# Seconds between asks for a place while every one is held elsewhere: from
# 0.05, growing with the wait to a quantum (a waiter keeps its place in line).
_REFUSED_POLL = 0.05
_BATCH = 200  # hosts per script call at most
_DRIFT = 1e-4  # how fast the clock mapping may move later (100 ppm of elapsed time)


class RedisHostGate:
    """``HostGate`` for one worker of a Redis crawl (the design: the module
    docstring). ``open()`` starts its sync task, ``close()`` gives back its
    places; ``async with`` does both."""

    def __init__(self, conn: Reconnecting, keys: CrawlKeys, worker: str, *, per_host: int,
                 delay: float, ttl: float = 30.0, quantum: float = 0.25,
                 linger: float = 0.1) -> None:
        self._conn = conn
        self._keys = keys
        self.worker = worker
        self.per_host = per_host
        self.delay = delay
        self.ttl = ttl
        self.quantum = quantum
        self.linger = linger
        self._slots: dict[str, RemoteSlot] = {}
        self._holding: set[RemoteSlot] = set()  # hosts with places held: synced every quantum
        self._dirty: list[RemoteSlot] = []
        self._seq = 0
        self._offset = _NEVER  # loop time minus server time, at most (seconds)
        self._offset_at = 0.0
        self._script = conn.client.register_script(lua.SYNC)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._failed: StateError | None = None
        self.syncs = 0  # script calls made (round trips)

    # -- lifecycle ---------------------------------------------------------
    async def open(self) -> None:
        """Start the sync task (the first question that needs Redis does too)."""
        self._start()

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name=f"loopcrawl-gate-{self.worker}")

    async def close(self) -> None:
        """Stop syncing and give every place back (within 5 s; else they
        expire at their deadline)."""
        task, self._task = self._task, None
        self._closed = True
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        held = [s for s in self._holding if s.held]
        for s in held:
            s.active = 0
            s.wants = False
            s.asked = -_NEVER
        if held and self._failed is None:
            try:
                async with asyncio.timeout(5.0):
                    await self._sync(held)
            except (TimeoutError, StateError):
                pass  # they expire on the server at their deadline

    async def __aenter__(self) -> RedisHostGate:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the HostGate protocol: answered here, from the allowance ----------
    def try_start(self, host: str, now: float, turn: int) -> float:
        s = self._slots.get(host) or self._slot(host)
        s.asked = now
        full = s.active >= s.held or s.active >= s.cap
        if full and s.active and (s.refused or s.active >= s.cap):
            return _NEVER  # no more to be had: our own finish frees a place
        if full or now >= s.fresh_until:
            return self._ask(s, now)
        at = s.throttled_until
        if s.delay > 0:
            t = s.turn_at
            if t is None:
                return self._ask(s, now)
            if now > t + _late(s.delay) and not s.late:
                # Missed by more than its slack: a new one. Never twice in a
                # row, so a loop that always wakes late still makes progress.
                s.late = True
                s.turn_at = None
                return self._ask(s, now)
            if t > at:
                at = t
        if at > now:
            return at
        s.turn_at = None
        s.active += 1
        s.last_start = now
        s.next_at = now + s.delay
        s.turn = turn
        s.timed = s.delay > 0
        s.late = False
        return 0.0

    def ready_at(self, host: str) -> float:
        s = self._slots.get(host)
        if s is None:
            return 0.0
        if s.active >= s.held or s.active >= s.cap:
            return _NEVER if s.active and (s.refused or s.active >= s.cap) else 0.0
        t = s.turn_at
        return t if t is not None and t > s.throttled_until else s.throttled_until

    def started(self, host: str, turn: int, now: float) -> float:
        s = self._slots[host]
        if s.delay <= 0:
            s.turn = None
            return max(0.0, s.throttled_until - now)
        if s.turn == turn and s.timed:
            s.turn = None
            return 0.0
        # Its turn went to a claim, or was taken while the host had no delay
        # (a Crawl-delay learned since): take_turn reserves one on the server.
        return _NEVER

    def claim(self, host: str, now: float) -> float:
        s = self._slot(host)
        s.turn = None
        if s.delay <= 0 and now < s.fresh_until:
            return max(0.0, s.throttled_until - now)
        return _NEVER  # a turn must come from the server: take_turn

    async def take_turn(self, host: str, now: float) -> float:
        """Reserve ``host``'s next turn on the server; the seconds until it."""
        if self._failed is not None:
            raise self._failed
        s = self._slot(host)
        s.turn = None
        if self._closed:  # the crawl is over: nothing left to keep apart
            return max(0.0, s.throttled_until - now)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        s.claims.append(fut)
        self._queue(s)
        at = await fut
        return max(0.0, at - loop.time())

    def answered(self, host: str, now: float) -> None:
        s = self._slot(host)
        s.last_start = max(s.last_start, now)
        s.next_at = max(s.next_at, now + s.delay)
        if s.delay > 0:
            s.ev_answered = True
            self._queue(s)

    def finish(self, host: str, now: float, backoff: float = 0.0) -> None:
        s = self._slots[host]
        s.active -= 1
        if backoff > 0:
            s.throttled_until = max(s.throttled_until, now + backoff)
            s.ev_backoff = max(s.ev_backoff, backoff)
            self._queue(s)
        elif s.held > s.cap:  # more than its share while others wait: give it back
            self._queue(s)

    def set_delay(self, host: str, delay: float) -> None:
        s = self._slot(host)
        if delay < s.base_delay + 0.001:  # the server keeps whole ms
            return  # per page with a Crawl-delay: nothing new
        s.base_delay = delay
        if delay > s.delay:
            s.delay = delay
        s.ev_delay = max(s.ev_delay, delay)
        self._queue(s)

    def throttle(self, host: str) -> None:
        s = self._slot(host)
        s.delay = min(max(s.delay * 2, THROTTLE_MIN_DELAY), THROTTLE_MAX_DELAY)
        _log.info("%s answered 429 or 503: one request every %.2f s or slower from now on",
                  host, s.delay)
        s.ev_throttle += 1
        self._queue(s)

    def relax(self, host: str) -> None:
        s = self._slots.get(host)
        if s is not None and s.delay > s.base_delay:
            d = s.delay * 0.75
            s.delay = d if d > s.base_delay + 0.01 else s.base_delay
            s.ev_relax += 1
            self._queue(s)

    def slot(self, host: str) -> HostSlot | None:
        return self._slots.get(host)

    def hosts(self) -> Collection[HostSlot]:
        return self._slots.values()

    def statistics(self) -> GateStats:
        held = self._holding
        return GateStats(self.syncs, len(held), sum(s.held for s in held),
                         sum(s.active for s in held),
                         sum(1 for s in self._slots.values() if s.refused))

    # -- talking to Redis --------------------------------------------------
    def _slot(self, host: str) -> RemoteSlot:
        s = self._slots.get(host)
        if s is None:
            s = self._slots[host] = RemoteSlot(host, self.per_host, self.delay, self.delay,
                                               cap=self.per_host)
        return s

    def _ask(self, s: RemoteSlot, now: float) -> float:
        """No answer from the allowance: ask Redis, and say when to look again."""
        if self._failed is not None:
            raise self._failed
        if not s.wants:
            s.wants = True
            if s.since == 0.0:
                s.since = now
        self._queue(s)
        if s.refused:
            if s.active:
                return _NEVER
            return now + min(self.quantum, max(_REFUSED_POLL, (now - s.since) / 4))
        # The answer comes within a round trip; while Redis is away, look less often.
        return now + min(0.25, max(_ASK, (now - s.since) / 2))

    def _queue(self, s: RemoteSlot) -> None:
        if not s.queued:
            s.queued = True
            self._dirty.append(s)
            if self._wake is None:
                self._start()
            if self._wake is not None:
                self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        tick = loop.time() + self.quantum
        try:
            while True:
                now = loop.time()
                if now >= tick:
                    # Keep every allowance fresh (and alive: the deadline moves
                    # on), learn what others changed, give back what lingers.
                    for s in self._holding:
                        self._queue(s)
                    tick = now + self.quantum
                if self._dirty:
                    batch = self._dirty[:_BATCH]
                    del self._dirty[:_BATCH]
                    await self._sync(batch)
                    continue
                wake.clear()
                timer = loop.call_at(tick, wake.set)
                await wake.wait()
                timer.cancel()
        except Exception as e:
            # Redis gone for good (or an answer that makes no sense): every
            # question raises it from now on, so the crawl stops with one line
            # instead of waiting for an answer that will not come.
            failed = e if isinstance(e, StateError) else StateError(
                f"the host gate's sync failed: {type(e).__name__}: {e}")
            self._failed = failed
            for s in self._slots.values():
                for fut in s.claims:
                    if not fut.done():
                        fut.set_exception(failed)
                s.claims.clear()
            raise failed from e

    async def _sync(self, batch: list[RemoteSlot]) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        keys: list[str] = []
        args: list[Any] = [self.worker, self.per_host, _ms(self.delay), _ms(self.ttl),
                           _ms(max(1.0, 4 * self.quantum)), _ms(THROTTLE_MIN_DELAY),
                           _ms(THROTTLE_MAX_DELAY)]
        plan: list[tuple[RemoteSlot, int, bool, int]] = []
        for s in batch:
            s.queued = False
            target = s.held
            wants = s.wants
            if wants and (s.active >= s.held or s.active >= s.cap):
                target = min(self.per_host, max(s.held, s.active + 1, 2 * s.active))
            elif not wants and s.held > s.active and sent - s.asked >= self.linger:
                target = s.active  # unused for a while: give back
            if s.held > s.cap and target > s.active:
                target = max(s.active, min(target, s.cap))
            want_turn = wants and s.delay > 0 and s.turn_at is None
            events = (s.ev_throttle or s.ev_relax or s.ev_delay or s.ev_backoff
                      or s.ev_answered)
            seq = 0
            if events:
                self._seq += 1
                seq = self._seq
            claims = len(s.claims)
            keys.extend(self._keys.gate(s.host))
            args.extend((seq, target, int(want_turn), int(claims > 0), _ms(s.ev_backoff),
                         s.ev_throttle, s.ev_relax, _ms(s.ev_delay), int(s.ev_answered)))
            s.ev_throttle = s.ev_relax = 0
            s.ev_delay = s.ev_backoff = 0.0
            s.ev_answered = False
            s.wants = False
            plan.append((s, target, want_turn, claims))
        script = self._script
        out = await self._conn.call(lambda c: script(keys=keys, args=args, client=c))
        got = loop.time()
        self.syncs += 1
        # Server time was read before the answer left: mapping it to ``got``
        # is never early. The mapping may drift later slowly (clock rates).
        off = got - int(out[0]) / 1000
        self._offset = min(off, self._offset + _DRIFT * (got - self._offset_at))
        self._offset_at = got
        off = self._offset
        fresh = sent + 2 * self.quantum
        for i, (s, target, want_turn, claims) in enumerate(plan):
            mine, cap, _waiting, delay, base, until, turn, claim = (
                int(v) for v in out[1 + i * lua.OUT_PER_HOST: 1 + (i + 1) * lua.OUT_PER_HOST])
            s.refused = target > s.held and mine <= s.held and mine <= s.active
            s.held = mine
            if mine or s.active:
                self._holding.add(s)
            else:
                self._holding.discard(s)
            s.cap = cap
            s.delay = delay / 1000
            s.base_delay = base / 1000
            if until:
                s.throttled_until = max(s.throttled_until, until / 1000 + off)
            s.fresh_until = fresh
            if not s.refused and mine > s.active:
                s.since = 0.0
            if turn >= 0:
                s.turn_at = turn / 1000 + off
                s.next_at = s.turn_at + s.delay
            if claim >= 0 and claims:
                fut = s.claims.pop(0)
                if not fut.done():
                    fut.set_result(claim / 1000 + off)
            if s.claims or (want_turn and turn < 0 and mine > 0):
                self._queue(s)  # more claims than one a sync, or a turn still owed


def _late(delay: float) -> float:
    """How late a reserved turn may still be taken: starting later would
    bring the next worker's turn closer than the delay by as much."""
    return max(0.02, delay / 4)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
