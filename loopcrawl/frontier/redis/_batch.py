"""A worker's writes to the crawl, sent in batches: one script at a time.

A worker has dozens of requests in flight; their pages' new links and
their acks arrive a few per turn of the event loop. Each caller adds its
groups of arguments and waits. The first one starts a send at the end of
the turn; while a send is on its way, what comes meanwhile waits and goes
in the next one (group commit), so batches grow with the load and a worker
has at most one such script in flight. Each caller gets its own slice of
the reply (the script answers one value per group). A script call costs
the worker more than the page's links (redis-py builds, sends and parses
each command in Python: ~150 us of CPU here), so fewer of them is what keeps
a Redis worker's cost per page near the in-process crawl's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["Coalescer"]

# send(links, acks): the flat groups of both kinds; returns one value per
# group, the links' first.
Send = Callable[[list[Any], list[Any]], Awaitable[Sequence[Any]]]
LINK_WIDTH, ACK_WIDTH = 5, 4  # arguments a group (the scripts' layout)


class Coalescer:
    """Batches ``links`` and ``ack`` calls into one ``send`` at a time.

    The tasks that send are this object's: ``aclose`` waits for them."""

    def __init__(self, send: Send) -> None:
        self._send = send
        # (is an ack, args, future), in arrival order.
        self._waiting: list[tuple[bool, Sequence[Any], asyncio.Future[list[Any]]]] = []
        self._task: asyncio.Task[None] | None = None
        self._scheduled = False
        self.sends = 0  # scripts sent (for the measurements)

    async def links(self, args: Sequence[Any]) -> list[Any]:
        """One flag per link group of ``args`` (1: queued)."""
        return await self._call(False, args)

    async def ack(self, args: Sequence[Any]) -> list[Any]:
        """One flag per ack group of ``args`` (1: acked)."""
        return await self._call(True, args)

    async def _call(self, is_ack: bool, args: Sequence[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((is_ack, args, fut))
        if self._task is None and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)  # the rest of this turn joins it
        return await fut

    def _start(self) -> None:
        self._scheduled = False
        if self._task is not None or not self._waiting:
            return
        batch, self._waiting = self._waiting, []
        self._task = asyncio.get_running_loop().create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[bool, Sequence[Any], asyncio.Future[list[Any]]]]
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
            at_link, at_ack = 0, len(links) // LINK_WIDTH
            for is_ack, args, fut in batch:
                if is_ack:
                    k = len(args) // ACK_WIDTH
                    got = res[at_ack:at_ack + k]
                    at_ack += k
                else:
                    k = len(args) // LINK_WIDTH
                    got = res[at_link:at_link + k]
                    at_link += k
                if not fut.done():
                    fut.set_result(list(got))
        finally:
            self._task = None
            if self._waiting:  # what came while this one was on its way
                self._start()

    async def aclose(self) -> None:
        """Wait for the sends under way and those waiting."""
        while self._task is not None or self._waiting:
            if self._task is None:
                self._start()
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
