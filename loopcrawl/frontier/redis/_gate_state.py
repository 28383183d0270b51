"""What a worker's ``RedisHostGate`` knows of each host, and what it reports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ...core.hostgate import HostSlot

__all__ = ["GateStats", "RemoteSlot"]


@dataclass(frozen=True, slots=True)
class GateStats:
    syncs: int  # script calls made (round trips to Redis)
    hosts: int  # hosts on which this worker holds places
    places: int  # places it holds in all
    in_flight: int  # of which in use
    waiting: int  # hosts on which it asked for a place and every one was held elsewhere


@dataclass(slots=True, eq=False)
class RemoteSlot(HostSlot):
    """One host as this worker last heard it from Redis, and its own part."""

    held: int = 0  # places Redis granted this worker
    cap: int = 0  # the worker's fair share while others wait (per_host while none do)
    turn_at: float | None = None  # a turn reserved on the server, on this loop's clock
    timed: bool = False  # the last start took a server turn (the host had a delay)
    late: bool = False  # the last turn was given up, missed by more than its slack
    fresh_until: float = 0.0  # start nothing after this without a newer answer
    asked: float = 0.0  # when a request last asked to start
    wants: bool = False  # a place or a turn was asked for since the last sync
    refused: bool = False  # the last ask for a place got none: every one is held elsewhere
    queued: bool = False  # waits for the next sync
    since: float = 0.0  # when the first unanswered ask was made (outage back-off)
    # Events not yet sent: they travel with the next sync, once.
    ev_throttle: int = 0
    ev_relax: int = 0
    ev_delay: float = 0.0
    ev_backoff: float = 0.0
    ev_answered: bool = False
    claims: list[asyncio.Future[float]] = field(default_factory=list)
