"""Dispatch: which leased request goes to the workers next.

Leased requests wait in per-host queues (``HostQueue``). One dispatcher
coroutine hands a request to the workers only when the ``HostGate`` lets its
host start one (a free place, its delay passed, no back-off), so a slow or
throttled host never holds up the others, and a worker never sleeps holding
a request. The gate (``hostgate.py``) owns the per-host politeness state;
this module owns the queues, the heap of hosts by when they may start, the
page budget and the workers' queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .hostgate import HostGate, LocalHostGate

if TYPE_CHECKING:
    from ..frontier import Frontier
    from ..http import Request

__all__ = ["HostQueue", "HostState", "Scheduler", "SchedulerStats"]

_NEVER = float("inf")
# When the gate says every place of a host is taken and none by us (a gate
# shared with other processes), nothing here will free one: look again then.
_SHARED_FULL_POLL = 0.05  # seconds


@dataclass(slots=True, eq=False)
class HostQueue:
    """The leased requests of one ``host:port`` waiting for the gate."""

    host: str
    queue: deque[Request] = field(default_factory=deque)
    scheduled: bool = False  # in the dispatcher's heap right now
    active: int = 0  # dispatched from here and not yet done


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    buffered: int
    in_flight: int
    waiting_retry: int
    hosts: int
    dispatched: int


@dataclass(frozen=True, slots=True)
class HostState:
    """What one host is doing now, for the live display.

    ``state``: "backing off" (a 429/503 or Retry-After raised its delay or
    stopped it), "fetching" (requests in flight), "waiting on delay" (requests
    queued, its --delay or Crawl-delay not yet passed), "queued" (ready, waiting
    for a free place in --concurrency) or "idle"."""

    host: str
    state: str
    in_flight: int
    queued: int
    delay: float  # seconds between request starts now (raised while backing off)


class Scheduler:
    """Feeds workers from the frontier, one host slot at a time.

    ``get()`` returns the next request a worker should fetch, or None when
    the crawl is over (finished, stopped, or the page budget is spent).
    Every request ``get()`` returns must be given back with ``done()``.
    """

    def __init__(
        self,
        frontier: Frontier,
        *,
        concurrency: int,
        per_host: int,
        delay: float,
        max_pages: int | None = None,
        spawn: Callable[[], None] | None = None,
        gate: HostGate | None = None,
    ) -> None:
        self.frontier = frontier
        # Which host may start a request now: this process's own state unless
        # a shared gate is given (several processes crawling together).
        self.gate: HostGate = gate if gate is not None else LocalHostGate(
            per_host=per_host, delay=delay)
        # Starts one more worker; asked when a request waits for a worker and
        # none is idle, so workers grow with the work in flight, up to
        # ``concurrency``, not with the setting itself.
        self._spawn = spawn
        self._workers = 0  # started through spawn
        self._idle = 0  # workers waiting in get()
        self.concurrency = concurrency
        self.per_host = per_host
        self.max_pages = max_pages
        self._queues: dict[str, HostQueue] = {}
        self._heap: list[tuple[float, int, HostQueue]] = []
        self._seq = itertools.count()
        self._buffered = 0
        self._in_flight = 0
        self._retrying = 0
        self._dispatched = 0  # counts toward max_pages
        # Retries back in their host queue, by lease: each keeps the place in
        # max_pages its first attempt took (another page must not take it
        # while the retry waits for its host), so it goes even when the
        # budget is spent, and is not counted again.
        self._returning: set[int] = set()
        # The hand-off to the workers: a deque and the futures of the workers
        # waiting in get() (an asyncio.Queue costs eight Python calls a request).
        self._work: deque[Request | None] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._wake = asyncio.Event()
        self._stopped = False
        # Lease in batches, and keep a bounded working set in memory.
        self._low_water = max(64, concurrency * 2)
        self._batch = max(256, concurrency * 4)
        # Leases that expire must be extended while held (buffered, in flight or
        # waiting for a retry): token -> request, kept only for such a frontier.
        self._held: dict[int, Request] | None = {} if frontier.lease_ttl is not None else None

    # -- the workers' side -------------------------------------------------
    async def get(self) -> Request | None:
        work = self._work
        while not work:  # (under load there is work: no suspension)
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            self._idle += 1
            try:
                await waiter
            except asyncio.CancelledError:
                if work and waiter.done() and not waiter.cancelled():
                    self._wake_worker()  # it was woken for work it will not take
                raise
            finally:
                self._idle -= 1
        return work.popleft()

    def _hand_off(self, item: Request | None) -> None:
        self._work.append(item)
        self._wake_worker()

    def _wake_worker(self) -> None:
        getters = self._getters
        while getters:
            waiter = getters.popleft()
            if not waiter.done():  # (a cancelled worker's is done)
                waiter.set_result(None)
                return

    def done(self, request: Request, *, counted: bool = True, backoff: float = 0.0) -> None:
        """A request from ``get()`` is finished with.

        ``counted=False`` gives its place in the page budget back (the request
        never reached the server, e.g. robots.txt forbade it). ``backoff``
        keeps the host quiet that many seconds (Retry-After, 429, 503).
        """
        hq = self._queues[request.url.split("/", 3)[2]]  # host_of, inline (per page)
        now = asyncio.get_running_loop().time()
        self.gate.finish(hq.host, now, backoff)
        hq.active -= 1
        self._in_flight -= 1
        if not counted:
            spent = self._budget_spent()
            self._dispatched -= 1
            if spent:  # hosts left the heap while it was spent (_dispatch)
                for q in self._queues.values():
                    self._schedule(q)
        self._schedule(hq)
        if not self._stopped:
            # The freed place is filled now, not after the dispatcher's next
            # turn: the worker that calls get() next takes the request at once
            # (a latency-bound crawl lost ~5% to that wait).
            self._dispatch(now)
        self._wake.set()

    def started(self, request: Request) -> float:
        """The request is going on the wire; returns the seconds to wait first.

        Its turn was taken when it was dispatched. If another request to its
        host took a turn since (robots.txt, a redirect hop, a request
        dispatched while this one waited for robots.txt), that turn is spent
        and it takes the next one (``claim``). Otherwise it goes now, and the
        host's delay counts from here."""
        return self.gate.started(request.url.split("/", 3)[2], request.lease,  # host_of
                                 asyncio.get_running_loop().time())

    def claim(self, host: str) -> float:
        """Take ``host``'s next turn for a request that was not dispatched (a
        redirect hop, robots.txt) or whose turn was spent; returns the seconds
        to wait before it goes on the wire (0: at once).

        The turn is reserved now, so nothing else starts on the host between
        it and the one before: every request to a host, whatever asked for
        it, keeps the host's delay (``--delay``, Crawl-delay, throttling)."""
        return self.gate.claim(host, asyncio.get_running_loop().time())

    async def wait_turn(self, host: str, wait: float | None = None) -> None:
        """``claim`` a turn on ``host`` and wait for it (``wait``: what
        ``started`` or ``claim`` answered already). A shared gate that answers
        inf reserves the turn on its server (``HostGate.take_turn``)."""
        if wait is None:
            wait = self.claim(host)
        if wait == _NEVER:
            wait = await self.gate.take_turn(host, asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)

    def answered(self, host: str) -> None:
        """A request that opened a connection to ``host`` (robots.txt, the first
        of each host) has its answer: the delay counts from now, since the
        server saw it arrive only after the handshakes."""
        self.gate.answered(host, asyncio.get_running_loop().time())

    def retry_later(self, request: Request, after: float) -> None:
        """Put ``request`` back in its host queue after ``after`` to 1.5 × ``after``
        seconds: jitter spreads retries out, and never comes early (Retry-After)."""
        self._retrying += 1
        loop = asyncio.get_running_loop()
        loop.call_later(after * (1 + 0.5 * random.random()), self._retry_now, request)

    def _retry_now(self, request: Request) -> None:
        self._retrying -= 1
        self._returning.add(request.lease)  # the same page: its place is kept
        self._push(request, front=True)  # it has waited its back-off already
        self._wake.set()

    def set_delay(self, host: str, delay: float) -> None:
        """Raise a host's delay (robots.txt Crawl-delay); never lower it."""
        self.gate.set_delay(host, delay)

    def throttled(self, host: str) -> None:
        """The host said 429 or 503: double its delay (at least THROTTLE_MIN_DELAY,
        at most THROTTLE_MAX_DELAY), so it sees fewer requests while it recovers."""
        self.gate.throttle(host)

    def stop(self) -> None:
        """Dispatch nothing more; workers get None once the queue drains."""
        self._stopped = True
        self._wake.set()

    def statistics(self) -> SchedulerStats:
        return SchedulerStats(
            self._buffered, self._in_flight, self._retrying, len(self.gate.hosts()),
            self._dispatched
        )

    def busiest(self, n: int) -> list[HostState]:
        """The ``n`` hosts with the most requests in flight, then queued, and what
        each is doing. A scan of every host: for a display, a few times a second."""
        now = asyncio.get_running_loop().time()
        queues = self._queues

        def queued(host: str) -> int:
            hq = queues.get(host)
            return len(hq.queue) if hq is not None else 0

        top = heapq.nlargest(n, self.gate.hosts(), key=lambda s: (s.active, queued(s.host)))
        out = []
        for s in top:
            waiting = queued(s.host)
            if s.throttled_until > now or s.delay > s.base_delay:
                state = "backing off"
            elif s.active:
                state = "fetching"
            elif waiting and s.next_at > now:
                state = "waiting on delay"
            else:
                state = "queued" if waiting else "idle"
            out.append(HostState(s.host, state, s.active, waiting, s.delay))
        return out

    # -- the dispatcher ----------------------------------------------------
    async def run(self) -> None:
        """Dispatch until the crawl is over, then send each worker its None."""
        loop = asyncio.get_running_loop()
        frontier = self.frontier
        heap = self._heap
        wake = self._wake
        drained = False  # the last lease got fewer requests than it asked for
        beat = None
        if frontier.lease_ttl is not None:
            beat = asyncio.create_task(self._heartbeat(frontier.lease_ttl),
                                       name="loopcrawl-lease-heartbeat")
        try:
            while True:
                if self._stopped:
                    break
                if self._budget_spent():
                    if self._in_flight == 0 and self._retrying == 0 and not self._returning:
                        break
                elif self._buffered < self._low_water:
                    got = await frontier.lease(self._batch)
                    drained = len(got) < self._batch
                    for r in got:
                        self._push(r)
                    if self._held is not None:
                        self._held.update((r.lease, r) for r in got)
                now = loop.time()
                self._dispatch(now)
                # Asked only when this process holds nothing: the frontier may
                # be remote, so its status is not asked on every turn.
                if (
                    self._in_flight == 0
                    and self._buffered == 0
                    and self._retrying == 0
                    and await frontier.is_finished()
                ):
                    break
                timer = None
                # With the budget spent only retries are dispatched, and nothing
                # is leased: no timer but for a retry (a host due already woke
                # this loop every half millisecond until the last request
                # ended); done() and a retry's return wake it.
                spent = self._budget_spent()
                if heap and self._in_flight < self.concurrency and (self._returning
                                                                    or not spent):
                    timer = loop.call_at(max(heap[0][0], now + 0.0005), wake.set)
                elif not spent and self._buffered < self._low_water and drained:
                    # The frontier had less than we asked for; more may come from
                    # elsewhere (another process, an expired lease): look again soon.
                    timer = loop.call_later(0.05, wake.set)
                await wake.wait()
                wake.clear()
                if timer is not None:
                    timer.cancel()
        finally:
            if beat is not None:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)
            for _ in range(self._workers):
                self._hand_off(None)

    async def _heartbeat(self, ttl: float) -> None:
        """Extend every lease held, three times per ``ttl``. The frontier names
        those it no longer holds for us (acked, released, or lost): they are
        forgotten here."""
        held = self._held
        assert held is not None
        while True:
            await asyncio.sleep(ttl / 3)
            if held:
                for r in await self.frontier.extend(list(held.values())):
                    if held.get(r.lease) is r:
                        del held[r.lease]

    def _dispatch(self, now: float) -> None:
        """Hand every request whose host is ready to the workers."""
        heap = self._heap
        try_start = self.gate.try_start
        returning = self._returning
        while heap and self._in_flight < self.concurrency:
            spent = self._budget_spent()
            if spent and not returning:
                break
            at, _, hq = heap[0]
            if at > now:
                break
            heapq.heappop(heap)
            hq.scheduled = False
            if not hq.queue:
                continue
            if spent and hq.queue[0].lease not in returning:
                continue  # no new page: off the heap until done() frees a place
            # The turn is named by the lease: unique among the requests in flight.
            wait = try_start(hq.host, now, hq.queue[0].lease)
            if wait:  # not now: ask again then
                if wait == _NEVER:  # every place taken: our done() reschedules it
                    if hq.active:
                        continue
                    wait = now + _SHARED_FULL_POLL  # taken elsewhere
                hq.scheduled = True
                heapq.heappush(heap, (wait, next(self._seq), hq))
                continue
            hq.active += 1
            r = hq.queue.popleft()
            self._buffered -= 1
            self._in_flight += 1
            if returning and r.lease in returning:
                returning.discard(r.lease)  # counted by its first attempt
            else:
                self._dispatched += 1
            self._work.append(r)  # _hand_off, written out
            if self._getters:
                self._wake_worker()
            if self._idle < len(self._work) and self._workers < self.concurrency:
                self._start_worker()
            self._schedule(hq)

    def _start_worker(self) -> None:
        if self._spawn is not None:
            self._workers += 1
            self._spawn()

    def _budget_spent(self) -> bool:
        return self.max_pages is not None and self._dispatched >= self.max_pages

    def _push(self, request: Request, *, front: bool = False) -> None:
        host = request.url.split("/", 3)[2]  # host_of, inline (per request)
        hq = self._queues.get(host)
        if hq is None:
            hq = self._queues[host] = HostQueue(host)
        if front:
            hq.queue.appendleft(request)
        else:
            hq.queue.append(request)
        self._buffered += 1
        self._schedule(hq)

    def _schedule(self, hq: HostQueue) -> None:
        """Put the host in the heap for when the gate lets it start (not while
        every place is taken by our requests: ``done`` schedules it again)."""
        if not hq.scheduled and hq.queue:
            if hq.active >= self.per_host:
                return  # our own requests hold every place (no gate gives more)
            at = self.gate.ready_at(hq.host)
            if at == _NEVER:
                if hq.active:
                    return
                at = asyncio.get_running_loop().time() + _SHARED_FULL_POLL
            hq.scheduled = True
            heapq.heappush(self._heap, (at, next(self._seq), hq))

    def unleased(self) -> list[Request]:
        """Requests leased from the frontier that no worker took (for release):
        those never dispatched, and those dispatched to no one (a crawl
        cancelled from outside, or stopped, before a new worker ran)."""
        out = [r for r in self._work if r is not None]
        self._work.clear()
        self._returning.clear()
        for hq in self._queues.values():
            out.extend(hq.queue)
            hq.queue.clear()
        self._buffered = 0
        return out
