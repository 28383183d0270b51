"""robots.txt fetched once per host for the whole crawl, kept in Redis.

``RedisRobots`` is the ``SharedRobots`` store of ``net/robots.RobotsCache``:
the first worker to need a host's robots.txt claims it (``SET NX`` of a
token of its own, with a deadline), fetches it (taking the host's turn like
any request) and keeps the answer in ``r:<host>`` for the crawl — or an
error for its retry window, so that the others fail or wait the same way
without asking the host again. The other workers poll for the answer (10 ms
doubling to 250 ms). A claimer keeps its claim alive while it fetches; one
that dies stops doing so, the claim expires (``claim_ttl``), and the next
worker to look claims and fetches. A worker that has waited ``wait_max``
without an answer fetches for itself (politeness still holds: the fetch
takes the host's turn).

Every call goes through ``Reconnecting``; each is safe to repeat: reads, an
absolute ``SET``, a claim checked by its token on retry, and a release that
deletes the claim only if it still holds our token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from ...net.robots import SharedAnswer

if TYPE_CHECKING:
    from ._reconnect import Reconnecting
    from .keys import CrawlKeys

__all__ = ["RedisRobots"]

# The claim, only while it is still ours: deleted, or kept alive ARGV[2] ms.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_KEEP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_POLL_FIRST = 0.01  # seconds
_POLL_MAX = 0.25  # seconds


class RedisRobots:
    """robots.txt of a crawl's hosts, fetched by one worker each (see the module)."""

    def __init__(self, conn: Reconnecting, keys: CrawlKeys, worker: str, *,
                 claim_ttl: float = 30.0, wait_max: float = 120.0) -> None:
        self._conn = conn
        self._keys = keys
        self.worker = worker
        self.claim_ttl = claim_ttl
        self.wait_max = wait_max
        self._release = conn.client.register_script(_RELEASE)
        self._keep_script = conn.client.register_script(_KEEP)
        self.fetched = 0  # hosts whose robots.txt this worker fetched for the crawl
        self.waited = 0  # hosts whose robots.txt another worker was fetching

    async def robots_once(self, host: str,
                          fetch: Callable[[], Awaitable[SharedAnswer]]) -> str:
        key, claim = self._keys.robots(host)
        call = self._conn.call
        token = f"{self.worker}:{os.urandom(6).hex()}"
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.wait_max
        pause = _POLL_FIRST
        waited = False
        while True:
            got = await call(lambda c: c.get(key))
            if got is not None:
                self.waited += waited
                return _text(got)
            if await self._claim(claim, token) or loop.time() > give_up:
                break
            waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
        keeper = asyncio.create_task(self._keep(claim, token), name=f"loopcrawl-robots-{host}")
        release = self._release
        try:
            value, keep = await fetch()
        except Exception:
            # The fetcher failed (a bug): let the next worker try at once.
            with contextlib.suppress(RedisError, OSError):
                await release(keys=[claim], args=[token], client=self._conn.client)
            raise
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        px = None if keep is None else max(1, round(keep * 1000))
        await call(lambda c: c.set(key, value.encode(), px=px))
        await call(lambda c: release(keys=[claim], args=[token], client=c))
        self.fetched += 1
        return value

    async def _claim(self, claim: str, token: str) -> bool:
        """Take the claim, or find it ours already (a retry after a drop)."""
        px = round(self.claim_ttl * 1000)
        if await self._conn.call(lambda c: c.set(claim, token, nx=True, px=px)):
            return True
        held = await self._conn.call(lambda c: c.get(claim))
        return held is not None and _text(held) == token

    async def _keep(self, claim: str, token: str) -> None:
        """Keep the claim alive while the fetch lasts (it waits for the
        host's turn, then for the answer)."""
        px = round(self.claim_ttl * 1000)
        keep = self._keep_script
        while True:
            await asyncio.sleep(self.claim_ttl / 3)
            await self._conn.call(lambda c: keep(keys=[claim], args=[token, px], client=c))


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
