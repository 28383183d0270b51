"""A worker's writes to the crawl, sent in batches: one script at a time.

A worker has dozens of requests in flight; their pages' new links and
their acks arrive a few per turn of the event loop. Each caller adds its
groups of arguments and waits. The first one starts a send at the end of
the turn; while a send is on its way, what comes meanwhile waits and goes
in the next one (group commit), so batches grow with the load and a worker
has at most one such script in flight; and sends start at least ``GAP``
apart (2 ms: a page waits that much longer, a fetch takes tens of ms), so a
worker sends at most 500 a second however fast Redis answers. Each caller gets its own slice of
the reply (the script answers one value per group). A script call costs
the worker more than the page's links (redis-py builds, sends and parses
each command in Python: ~150 us of CPU here), so fewer of them is what keeps
a Redis worker's cost per page near the in-process crawl's; and each kind
goes as one argument (a line a group) and comes back as one string (a flag a
group), since redis-py packs and parses each argument and each reply in
Python too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["Coalescer"]

GAP = 0.002  # seconds between the starts of two sends, at least

# send(links, acks): the groups of both kinds; returns one flag (a byte,
# b"1" or b"0") per group, the links' first.
Send = Callable[[list[Any], list[Any]], Awaitable[bytes]]


class Coalescer:
    """Batches ``links`` and ``ack`` calls into one ``send`` at a time.

    The tasks that send are this object's: ``aclose`` waits for them."""

    def __init__(self, send: Send) -> None:
        self._send = send
        # (is an ack, groups, future), in arrival order.
        self._waiting: list[tuple[bool, Sequence[Any], asyncio.Future[bytes]]] = []
        self._task: asyncio.Task[None] | None = None
        self._scheduled = False
        self._last = -GAP  # loop time the last send started
        self.sends = 0  # scripts sent (for the measurements)

    async def links(self, groups: Sequence[Any]) -> bytes:
        """One flag per link group (b"1": queued)."""
        return await self._call(False, groups)

    async def ack(self, group: Any) -> bytes:
        """The ack group's flag (b"1": acked)."""
        return await self._call(True, (group,))

    async def _call(self, is_ack: bool, groups: Sequence[Any]) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        self._waiting.append((is_ack, groups, fut))
        if self._task is None and not self._scheduled:
            self._schedule(loop)
        return await fut

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a send at the end of this turn, or ``GAP`` after the last one."""
        self._scheduled = True
        at = self._last + GAP
        if at > loop.time():
            loop.call_at(at, self._start)
        else:
            loop.call_soon(self._start)  # the rest of this turn joins it

    def _start(self) -> None:
        self._scheduled = False
        if self._task is not None or not self._waiting:
            return
        batch, self._waiting = self._waiting, []
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._task = loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[bool, Sequence[Any], asyncio.Future[bytes]]]
                     ) -> None:
        links: list[Any] = []
        acks: list[Any] = []
        for is_ack, args, _ in batch:
            if is_ack:
                acks += args
            else:
                links += args
        self.sends += 1
        try:
            res = await self._send(links, acks)
        except BaseException as e:  # every caller hears of it (cancellation included)
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
        else:
            at_link, at_ack = 0, len(links)
            for is_ack, groups, fut in batch:
                k = len(groups)
                if is_ack:
                    got = res[at_ack:at_ack + k]
                    at_ack += k
                else:
                    got = res[at_link:at_link + k]
                    at_link += k
                if not fut.done():
                    fut.set_result(got)
        finally:
            self._task = None
            if self._waiting and not self._scheduled:  # what came meanwhile
                self._schedule(asyncio.get_running_loop())

    async def aclose(self) -> None:
        """Wait for the sends under way and those waiting."""
        while self._task is not None or self._waiting:
            if self._task is None:
                self._start()  # now, not after the gap
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
