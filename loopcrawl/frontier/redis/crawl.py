"""``RedisCrawl``: one crawl's record in Redis (settings, seeds, seen set
bucket bits, page budget) and the factory of its workers' frontiers.

The seen set holds each 64-bit fingerprint exactly, split in two: its top
``seen_bits`` bits pick a bucket (a key, ``s:<bucket>``), the other bits are
the member, an integer. A set of integers of up to ``set-max-intset-entries``
(512 by default) is an intset, a sorted array of int64 in one allocation:
8 bytes a URL plus the key's own ~80 bytes shared by its members. So the
bucket count is chosen when the crawl is created, from the URLs it expects
(``expected_urls``, default 1,000,000: 2^12 = 4,096 buckets, ~244 URLs
each): a bucket holds ~256 at the expected size, and intsets last until
about twice it. Measured (``INFO memory`` before and after, the queue
deleted; BENCHMARKS.md): 8.7 bytes a URL at 1,000,000 URLs, every bucket an
intset; 16.7 at 2,000,000 URLs in the same 4,096 buckets, where 544 buckets
had passed 512 members and become hash tables (~60 bytes a member); 70 at
ten times the expected size. Dedup stays exact whatever the size: only the
memory grows. A crawl expected to grow more is seeded with a larger
``expected_urls`` (``seen_bits``: up to 2^24 buckets), or its Redis given a
larger ``set-max-intset-entries`` (a lookup in an intset is a binary search,
an insert moves the array: a few thousand members stay cheap). The bucket
bits are the crawl's for good: seeding it again splits by its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...errors import ConfigError, StateError
from ...http import Request
from ...settings import Settings
from . import _scripts
from ._reconnect import Reconnecting
from .frontier import DEFAULT_LEASE_TTL, RedisFrontier
from .gate import RedisHostGate
from .keys import FORMAT, CrawlKeys, check_name
from .robots import RedisRobots
from .status import GONE_AFTER, CrawlStatus, read_status

__all__ = ["DEFAULT_EXPECTED_URLS", "RedisCrawl", "seen_bits"]

DEFAULT_EXPECTED_URLS = 1_000_000
_PER_BUCKET = 256  # fingerprints per seen-set bucket at the expected size
_SEEDS_A_CALL = 10_000
_CONNECT_TIMEOUT = 5.0  # seconds
_SOCKET_TIMEOUT = 30.0  # seconds for any reply (a script runs for milliseconds)

T = TypeVar("T")
Splitter = Callable[[int], tuple[int, int]]


def seen_bits(expected_urls: int) -> int:
    """Bucket bits for a crawl expecting ``expected_urls`` URLs: ~256 a
    bucket then (8 to 24 bits: 256 to 16.7 million buckets)."""
    return max(8, min(24, math.ceil(math.log2(max(expected_urls, 1) / _PER_BUCKET))))


def shown(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        u = urlsplit(url)
        if u.password is None:
            return url
        host = u.hostname or ""
        netloc = f"{u.username or ''}:***@{host}" + (f":{u.port}" if u.port else "")
        return urlunsplit(u._replace(netloc=netloc))
    except ValueError:
        return url


def settings_json(settings: Settings) -> bytes:
    """The crawl's settings as stored in meta (the seeds live in their own list)."""
    return orjson.dumps({f.name: getattr(settings, f.name) for f in fields(Settings)
                         if f.name != "seeds"})


class RedisCrawl:
    """One crawl in Redis, by name. Build it with ``await RedisCrawl.connect``."""

    def __init__(self, client: aioredis.Redis, url: str, name: str) -> None:
        self.client = client
        self.url = url
        self.name = name
        self.keys = CrawlKeys(name)
        # Every call below rides out a restarted server or a dropped connection.
        self.conn = Reconnecting(client, where=f"Redis at {shown(url)}")
        self.scripts = SimpleNamespace(**{
            s.lower(): client.register_script(getattr(_scripts, s))
            for s in ("SEED", "LEASE", "TURN", "RELEASE", "EXTEND", "FINISHED", "STATS",
                      "MARK_SEEN")})
        self._split: Splitter | None = None

    @classmethod
    async def connect(cls, url: str, name: str) -> RedisCrawl:
        """Connect to the Redis at ``url`` (``redis://HOST:PORT/DB``,
        ``rediss://``, ``unix://``) for crawl ``name``. ``ConfigError`` (one
        line, no password) if the URL is wrong or the server does not answer."""
        check_name(name)
        try:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT,
                                             socket_timeout=_SOCKET_TIMEOUT)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"--redis {shown(url)}: {e}") from None
        try:
            await client.ping()
        except (RedisError, OSError) as e:
            await client.aclose()
            raise ConfigError(f"cannot reach Redis at {shown(url)}: {e}") from None
        return cls(client, url, name)

    async def call(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``await fn(client)``: the one place every Redis call of the crawl
        goes through, so that all of them ride out a dropped connection or a
        restarted server (``Reconnecting``; ``_reconnect.py`` says which
        calls may be repeated)."""
        return await self.conn.call(fn)

    async def run(self, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run one of ``scripts`` (EVALSHA; loaded again if the server lost it)."""
        return await self.call(lambda c: script(keys=keys, args=args, client=c))

    async def run_command(self, *args: Any) -> Any:
        """One plain command."""
        return await self.call(lambda c: c.execute_command(*args))

    async def status(self, gone_after: float = GONE_AFTER) -> CrawlStatus:
        """queued, leased, done, failed, pages/s over the last minute, the
        workers with their last heartbeat (silent ``gone_after`` s: gone),
        the top hosts; ``ConfigError`` if there is no crawl of this name."""
        return await read_status(self, gone_after)

    def gate(self, worker_id: str, settings: Settings, *,
             ttl: float = DEFAULT_LEASE_TTL) -> RedisHostGate:
        """Worker ``worker_id``'s host gate: ``per_host``, ``delay`` and
        Crawl-delay, Retry-After and back-off held across every worker of the
        crawl (``gate.py``). Its places are leases of ``ttl`` seconds; close it
        (``async with``, or ``await gate.close()``) to give them back at once."""
        return RedisHostGate(self.conn, self.keys, worker_id, per_host=settings.per_host,
                             delay=settings.delay, ttl=ttl)

    def robots_store(self, worker_id: str) -> RedisRobots:
        """robots.txt fetched once per host for the whole crawl (``robots.py``):
        pass it as ``Crawler(robots=...)``."""
        return RedisRobots(self.conn, self.keys, worker_id)

    # -- the crawl's record ------------------------------------------------
    async def exists(self) -> bool:
        return bool(await self.run_command("EXISTS", self.keys.meta))

    async def create_or_add(self, settings: Settings, seeds: Sequence[str] = (), *,
                            expected_urls: int = DEFAULT_EXPECTED_URLS) -> int:
        """Create the crawl with ``settings`` and ``seeds`` (and
        ``settings.seeds``), or add the seeds to the crawl of that name if it
        exists (its settings stay as they are). Returns how many seeds were
        queued (those not seen before). ``ConfigError`` for a seed that is
        no http(s) URL."""
        settings = settings.replace(seeds=(*settings.seeds, *seeds))  # canonical, checked
        urls = list(dict.fromkeys(settings.seeds))
        bits = seen_bits(expected_urls)
        stored = settings_json(settings)
        max_pages = "" if settings.max_pages is None else settings.max_pages
        queued = 0
        at = 0
        while True:  # ~10,000 seeds a call, so that no command is huge
            chunk = urls[at:at + _SEEDS_A_CALL]
            got = await self._seed(chunk, stored, bits, max_pages)
            if got is None:  # the crawl exists, split by other bits: once more by its own
                theirs = await self.run_command("HGET", self.keys.meta, "seen_bits")
                bits = bits if theirs is None else int(theirs)  # None: deleted meanwhile
                continue
            queued += got
            at += _SEEDS_A_CALL
            if at >= len(urls):
                return queued

    async def _seed(self, urls: list[str], stored: bytes, bits: int,
                    max_pages: int | str) -> int | None:
        """One SEED script: how many of ``urls`` were queued, or None if the
        crawl exists with other seen bits than ``bits``."""
        split = _splitter(bits)
        k = self.keys
        keys = [k.meta, k.seeds, k.n, k.q, k.qp]
        slots: dict[int, int] = {}
        lines = []
        for u in urls:
            bucket, member = split(Request(u).fp)
            at = slots.get(bucket)
            if at is None:
                keys.append(k.seen(bucket))
                at = slots[bucket] = len(keys)
            lines.append(b"%d\t%d\t1\t\t%s" % (at, member, orjson.dumps((u, 0, None))))
        args: list[Any] = [stored, f"{time.time():.3f}", FORMAT, bits, max_pages,
                           len(urls), *urls, b"\n".join(lines)]
        created, queued = await self.run(self.scripts.seed, keys, args)
        if created == -1:
            return None
        self._split = split
        return int(queued)

    async def settings(self) -> Settings:
        """The crawl's settings, seeds included; ``ConfigError`` if there is
        no crawl of this name."""
        k = self.keys
        stored, fmt = await self.call(lambda c: c.hmget(k.meta, ["settings", "format"]))
        if stored is None:
            raise self._missing()
        if fmt != FORMAT.encode():
            raise StateError(f"crawl {self.name} was written in layout {fmt!r}, not {FORMAT}: "
                             "by another version of loopcrawl")
        seeds = [s.decode() if isinstance(s, bytes) else s
                 for s in await self.run_command("ZRANGE", k.seeds, 0, -1)]
        values = orjson.loads(stored)
        values["seeds"] = seeds
        names = {f.name for f in fields(Settings)}
        if unknown := sorted(set(values) - names):
            raise StateError(f"crawl {self.name} has settings this loopcrawl does not know "
                             f"({', '.join(unknown)}): it was seeded by a newer version")
        try:
            return Settings(**values)
        except ConfigError as e:
            raise StateError(f"crawl {self.name}'s stored settings: {e}") from None

    def _missing(self) -> ConfigError:
        return ConfigError(f"no crawl named {self.name!r} in Redis at {shown(self.url)} "
                           "(create it with loopcrawl seed)")

    async def splitter(self) -> Splitter:
        """How fingerprints are split into (bucket, member) in this crawl."""
        if self._split is None:
            bits = await self.run_command("HGET", self.keys.meta, "seen_bits")
            if bits is None:
                raise self._missing()
            self._split = _splitter(int(bits))
        return self._split

    def frontier(self, worker_id: str, *, lease_ttl: float = DEFAULT_LEASE_TTL) -> RedisFrontier:
        """The frontier of worker ``worker_id`` (unique in the crawl: host and
        pid, say) whose leases last ``lease_ttl`` seconds unless extended."""
        return RedisFrontier(self, worker_id, lease_ttl=lease_ttl)

    async def delete(self) -> int:
        """Remove every key of the crawl; returns how many there were."""
        n = 0
        async for key in self.client.scan_iter(match=self.keys.pattern(), count=1000):
            n += await self.client.unlink(key)
        return n

    async def close(self) -> None:
        await self.client.aclose()


def _splitter(bits: int) -> Splitter:
    shift = 64 - bits
    mask = (1 << shift) - 1

    def split(fp: int) -> tuple[int, int]:
        return fp >> shift, fp & mask

    return split
