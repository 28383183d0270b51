"""Calls of one script made in the same turn of the event loop, sent as one.

A worker has dozens of requests in flight; their acks (and their pages'
new links) arrive a few per turn of the loop. Each caller adds its groups
of arguments and waits; at the end of the turn one script call carries
them all, and each caller gets its own slice of the reply (the scripts
answer one value per group). So Redis runs one script per turn instead of
one per page, and the worker's client builds and parses one command: the
round trips a page costs fall with the load, and the answer comes one loop
turn later than alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["Coalescer"]

Send = Callable[[list[Any]], Awaitable[Sequence[Any]]]


class Coalescer:
    """Batches the ``args`` of concurrent ``call``s into one ``send``.

    ``width`` is the number of arguments per group; ``send`` gets every
    group of the turn, flat, and returns one value per group. The tasks that
    send are this object's: ``aclose`` waits for them."""

    def __init__(self, send: Send, width: int) -> None:
        self._send = send
        self._width = width
        self._waiting: list[tuple[Sequence[Any], asyncio.Future[list[Any]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # sends made (for the measurements)

    async def call(self, args: Sequence[Any]) -> list[Any]:
        """One value per group of ``args``, once the turn's batch is answered."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._start)
        self._waiting.append((args, fut))
        return await fut

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[Sequence[Any], asyncio.Future[list[Any]]]]) -> None:
        flat: list[Any] = []
        for args, _ in batch:
            flat += args
        self.calls += 1
        try:
            res = await self._send(flat)
        except BaseException as e:  # every caller hears of it (cancellation included)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception)
                                      else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
            return
        at = 0
        w = self._width
        for args, fut in batch:
            k = len(args) // w
            if not fut.done():
                fut.set_result(list(res[at:at + k]))
            at += k

    async def aclose(self) -> None:
        """Wait for the sends under way."""
        while self._tasks or self._waiting:
            if self._waiting:
                self._start()
            await asyncio.gather(*self._tasks, return_exceptions=True)
