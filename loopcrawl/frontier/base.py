"""The frontier protocol: add, lease, ack, release, is_finished."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..http import FetchRecord, Request


@dataclass(frozen=True, slots=True)
class FrontierStats:
    queued: int
    leased: int
    done: int
    seen: int


class Frontier(Protocol):
    async def add(self, requests: Sequence[Request]) -> int:
        """Queue the requests not seen before; return how many were new.

        A request whose ``meta`` has ``dont_filter`` skips the seen check.
        """

    async def mark_seen(self, fp: int) -> bool:
        """Claim ``fp`` without queueing it (a redirect target being fetched
        inline). False: it was seen already, and the caller must not fetch it."""

    async def lease(self, n: int) -> list[Request]:
        """Up to ``n`` requests to fetch now. An empty list means "nothing ready
        now", not "finished": ask ``is_finished()`` for that."""

    async def ack(self, request: Request, record: FetchRecord) -> None:
        """The request is done for good (fetched, or failed past its retries)."""

    async def release(self, request: Request) -> None:
        """Give a leased request back unfetched; it will be leased again."""

    def is_finished(self) -> bool:
        """True when nothing is queued and nothing is leased."""

    def statistics(self) -> FrontierStats: ...

    async def close(self) -> None: ...
