"""Every Redis call of a crawl goes through ``Reconnecting.call``.

A worker must outlive a dropped connection, a restarted or failed-over
server and a server still loading its append-only file: the call pauses,
waits with bounded exponential back-off (0.05 s doubling to 5 s, with
jitter so that a hundred workers do not reconnect in step), logs once that
Redis is gone and once that it is back, and is made again. redis-py's pool
opens a new connection for the next attempt by itself; a script the new
server does not know (NOSCRIPT after a restart) is loaded again by
``redis.asyncio`` ``Script``. Past ``give_up`` seconds (5 minutes by
default) without an answer the call raises ``StateError``, which stops the
crawl with one clear line.

Retrying is only safe for a call that gives the same result when it ran
twice, since a connection may drop after the server ran the command and
before its answer came back. So every call made through here is one of:
- a read, or a write of an absolute value (``SET``, ``HSET``, ``ZADD``);
- a claim that is checked on retry (``SET NX`` with a token of the caller's,
  then ``GET`` to see whether the token that holds it is ours);
- a Lua script that is idempotent by construction: it takes targets, not
  deltas ("this worker holds 3 places of host h", not "one more"), and the
  events it applies once (a throttle, a Retry-After) carry a sequence
  number per worker that the script records, so a replay skips them. The
  gate's script (``gate.py``) is built that way; a script that moves a
  request between queue, lease and done checks its state (a lease token)
  the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError, TryAgainError

from ...errors import StateError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Reconnecting"]

T = TypeVar("T")
_log = logging.getLogger("loopcrawl")

# What a restart, a failover or a dropped link raises; anything else (a
# script error, a wrong type) is a bug or bad data and is not retried.
_TRANSIENT = (ConnectionError, TimeoutError, BusyLoadingError, TryAgainError, OSError)

FIRST_WAIT = 0.05  # seconds before the first retry
MAX_WAIT = 5.0  # seconds between retries at most
GIVE_UP = 300.0  # seconds without an answer before the crawl stops
# Seconds after Redis came back in which a failure is the same outage (a
# connection opened before it, met late), neither counted nor logged again.
_GRACE = 2.0


class Reconnecting:
    """Runs Redis calls, riding out restarts and dropped connections.

    ``call(fn)`` awaits ``fn(client)`` and returns its result; on a
    connection error it waits and calls ``fn`` again (see the module
    docstring for which calls may be retried). ``outages`` counts the times
    Redis was lost; ``down_since`` is the loop time of the current outage
    (None while Redis answers), for the display."""

    def __init__(self, client: Redis, *, give_up: float = GIVE_UP,
                 first_wait: float = FIRST_WAIT, max_wait: float = MAX_WAIT,
                 where: str = "Redis") -> None:
        self.client = client
        self.give_up = give_up
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.where = where  # how the log names the server
        self.outages = 0
        self.down_since: float | None = None
        self._down_from = 0.0  # when the last outage began
        self._back_at = self._logged_back = -_GRACE  # when Redis last answered after one

    async def call(self, fn: Callable[[Redis], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        wait = self.first_wait
        while True:
            try:
                result = await fn(self.client)
            except _TRANSIENT as e:
                now = loop.time()
                if self.down_since is None:
                    if now - self._back_at < _GRACE:
                        self.down_since = self._down_from  # a straggler of the last outage
                    else:
                        self.down_since = now
                        self.outages += 1
                        _log.warning("%s is unreachable (%s): pausing, retrying for up to "
                                     "%.0f s", self.where, _short(e), self.give_up)
                    # Idle connections went stale with the server: drop them
                    # all now rather than meet them one by one once it is back.
                    with contextlib.suppress(Exception):
                        await self.client.connection_pool.disconnect(inuse_connections=False)
                elif now - self.down_since > self.give_up:
                    raise StateError(f"{self.where} unreachable for {now - self.down_since:.0f} s"
                                     f" ({_short(e)}): giving up") from e
                # Full jitter below the cap: workers cut off together come back spread out.
                await asyncio.sleep(wait * (0.5 + 0.5 * random.random()))
                wait = min(wait * 2, self.max_wait)
                continue
            if self.down_since is not None:
                self._back_at = loop.time()
                if self._back_at - self._logged_back > _GRACE:
                    _log.warning("%s answers again after %.1f s", self.where,
                                 self._back_at - self.down_since)
                self._logged_back = self._back_at
                self._down_from, self.down_since = self.down_since, None
            return result

    async def close(self) -> None:
        await self.client.aclose()


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."
