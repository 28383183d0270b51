"""Every Redis key of a crawl, named in one place.

All keys of crawl NAME begin ``lc:{NAME}:``. The braces are a Redis Cluster
hash tag: only ``NAME`` is hashed, so every key of one crawl lives in one
slot, and a Lua script may touch any of them (a crawl lives on one shard;
many crawls spread over a cluster). Other modules add their keys here, so
that ``docs/distributed.md`` can list the layout from one file.

=================  =====================================================
key (after the     what it holds
prefix)
=================  =====================================================
``meta``           hash: ``settings`` (JSON), ``created`` (Unix time),
                   ``format`` (layout version), ``seen_bits`` (bucket
                   bits of the seen set), ``max_pages`` (the budget)
``seeds``          sorted set: the crawl's seeds by the order they came
                   (the settings' ``seeds``; the scope is made of them)
``n``              hash of counters kept by the scripts: ``seen``,
                   ``done``, ``failed``, ``pages`` (counted against
                   ``max_pages``), ``expired``, ``token``, ``seq``
``q``              list: the queue of requests with priority 0 (FIFO)
``qp``             sorted set: requests with a priority (score
                   -priority; a 16-hex-digit sequence number before the
                   payload keeps arrival order within one priority)
``leases``         hash: lease token -> the leased request as queued
``deadlines``      sorted set: lease token by deadline (ms, server time)
``claims``         hash: a leased request's fingerprint -> the redirect
                   targets it claimed (``mark_seen(fp, by=...)``)
``s:<bucket>``     set of integers: the seen set, one per bucket (the top
                   ``seen_bits`` bits of a fingerprint; the member is the
                   rest), small enough for Redis's intset encoding
``workers``        sorted set: worker id by its last heartbeat (ms)
``rate``           hash: Unix second -> pages acked in it (last minute)
``hosts``          sorted set: host by pages acked
``g:<host>``       hash: the host gate's state of one ``host:port``
                   (``gate.py``): ``held`` places granted in all,
                   ``holders``, ``next`` turn, ``last`` start, ``until``
                   (Retry-After), ``delay`` (raised while throttled) and
                   ``base`` (Crawl-delay), all ms of server time;
                   ``w:<worker>`` places a worker holds, ``s:<worker>``
                   its last event sequence
``g:<host>:d``     sorted set: the host's holders by deadline (ms)
``g:<host>:w``     sorted set: workers waiting for a place, by when they
                   were first refused (first come first served); the
                   three ``g:`` keys expire an hour after the host's last
                   sync
``r:<host>``       string: robots.txt of ``host:port`` as fetched ("" for
                   none), or a fetch error ("\\0kind\\0message", kept
                   for its retry window)
``r:<host>:c``     string: the claim of the worker fetching it (token,
                   expires unless the fetcher keeps it alive)
=================  =====================================================
"""

from __future__ import annotations

import re

from ...errors import ConfigError

__all__ = ["FORMAT", "CrawlKeys", "check_name"]

FORMAT = "1"  # the layout version stored in meta; bumped when a key changes meaning

# A crawl name is part of every key and of the hash tag: no braces, no
# spaces, nothing a shell or a URL would mangle.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}").fullmatch


def check_name(name: str) -> str:
    """``name`` if it can name a crawl, else ``ConfigError``."""
    if not isinstance(name, str) or not _NAME(name):
        raise ConfigError(f"crawl name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    return name


class CrawlKeys:
    """The key names of one crawl (see the module docstring for what each holds)."""

    __slots__ = ("claims", "deadlines", "hosts", "leases", "meta", "n", "prefix", "q", "qp",
                 "rate", "seeds", "seen_prefix", "workers")

    def __init__(self, name: str) -> None:
        p = self.prefix = f"lc:{{{check_name(name)}}}:"
        self.meta = p + "meta"
        self.seeds = p + "seeds"
        self.n = p + "n"
        self.q = p + "q"
        self.qp = p + "qp"
        self.leases = p + "leases"
        self.deadlines = p + "deadlines"
        self.claims = p + "claims"
        self.seen_prefix = p + "s:"
        self.workers = p + "workers"
        self.rate = p + "rate"
        self.hosts = p + "hosts"

    def gate(self, host: str) -> tuple[str, str, str]:
        """The host gate's keys of ``host``: state, holders, waiters."""
        g = f"{self.prefix}g:{host}"
        return g, g + ":d", g + ":w"

    def robots(self, host: str) -> tuple[str, str]:
        """robots.txt of ``host`` kept for the crawl, and the fetcher's claim."""
        r = f"{self.prefix}r:{host}"
        return r, r + ":c"

    def seen(self, bucket: int) -> str:
        """The set holding the seen fingerprints of ``bucket``."""
        return f"{self.seen_prefix}{bucket}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key of the crawl."""
        return self.prefix.replace("{", "\\{").replace("}", "\\}") + "*"
