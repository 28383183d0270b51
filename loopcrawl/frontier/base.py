"""The frontier protocol: add, lease, ack, release, extend, is_finished.

Leases are tokens, not object identities, so that another process or Redis
can issue them: ``lease()`` stamps each request it hands out with
``request.lease`` (a positive int, unique among the frontier's live leases)
and ``request.lease_deadline`` (Unix time). The holder gives every leased
request back once, by ``ack`` (done) or ``release`` (not fetched), before the
deadline or after pushing it back with ``extend`` (a heartbeat). A frontier
whose leases expire (``lease_ttl`` not None) queues an expired request again
for another holder and ignores the late ack or release of the old one. The
in-process frontiers never expire a lease (``lease_deadline`` is inf): the
holder is the process that holds the frontier, and when it dies both go.

``is_finished()`` and ``statistics()`` are async: a shared frontier must ask
its server. Callers ask them when they could be finished, not per page.

A persistent frontier also offers ``Checkpointing``: the engine calls it to
commit the frontier's changes together with the output that depends on them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import StateError
from ..http import Request
from ..urls import fingerprints

if TYPE_CHECKING:
    from ..http import FetchRecord


@dataclass(frozen=True, slots=True)
class FrontierStats:
    queued: int
    leased: int  # handed out and not yet acked or released, by any holder
    done: int
    seen: int
    expired: int = 0  # leases that passed their deadline and were queued again


# Which of a page's unseen links to queue (the crawl's scope and trap checks).
LinkFilter = Callable[[list[str]], list[str]]


def unseen_links(seen: Container[int], urls: Sequence[str], depth: int,
                 referrer: str | None, keep: LinkFilter | None = None,
                 fps: Sequence[int] | None = None) -> list[Request]:
    """GET requests for the ``urls`` whose fingerprint (``fps``, computed when
    None) is not in ``seen`` (and that ``keep`` keeps): a frontier's
    ``add_links`` passes them to its ``add``.

    ~29 of a page's 30 links were seen already: they cost a hash and a set
    lookup, and never reach ``keep`` nor become a ``Request``."""
    new = [(u, fp) for u, fp in zip(urls, fingerprints(urls) if fps is None else fps, strict=True)
           if fp not in seen]
    if keep is not None and new:
        kept = keep([u for u, _ in new])
        if len(kept) < len(new):
            wanted = set(kept)
            new = [(u, fp) for u, fp in new if u in wanted]
    return [Request(u, depth, referrer, fp=fp) for u, fp in new]


def callback_names(r: Request, where: str) -> dict[str, str]:
    """``r``'s callback and errback as a persistent frontier stores them, by
    name (``{"callback": "parse_item"}``): a function cannot be written down,
    a spider's method is found again by its name. ``StateError`` for any
    other callable (``where``: "kept in a state file", "queued in Redis")."""
    out = {}
    for key in ("callback", "errback"):
        cb = getattr(r, key)
        if cb is None:
            continue
        if not isinstance(cb, str):
            if not inspect.ismethod(cb):
                raise StateError(f"the {key} of {r.url} ({cb!r}) is not a method of the "
                                 f"spider, so it cannot be {where}")
            cb = cb.__name__
        out[key] = cb
    return out


class Frontier(Protocol):
    @property
    def lease_ttl(self) -> float | None:
        """Seconds a lease lasts unless extended; None: leases never expire
        (then nobody needs to call ``extend``)."""

    async def add(self, requests: Sequence[Request]) -> int:
        """Queue the requests not seen before; return how many were new.

        A request with ``dont_filter`` set skips the seen check.
        """

    async def add_links(self, urls: Sequence[str], depth: int, referrer: str | None,
                        keep: LinkFilter | None = None, fps: Sequence[int] | None = None) -> int:
        """Queue a GET request for each canonical URL in ``urls`` not seen
        before that ``keep`` (if given) keeps; return how many were queued.
        ``fps``: the ``urls``' fingerprints when the caller has them (the link
        follower computes them once for this and the trap guard).

        The crawl's links come this way. Most of a page's links were seen
        already, so the seen check comes first: the others cost a hash and a
        set lookup, not a ``Request``, a scope check or a trap check."""

    async def mark_seen(self, fp: int, by: Request | None = None) -> bool:
        """Claim ``fp`` without queueing it (a redirect target being fetched
        inline by the leased request ``by``, which carries its lease). False:
        it was seen already, and the caller must not fetch it. A claim by
        ``by`` holds again for ``by``'s request, whoever leases it next (its
        retry, or its refetch after a release, follows the same redirect), and
        a persistent frontier persists it only once ``by`` is acked."""

    async def lease(self, n: int) -> list[Request]:
        """Up to ``n`` requests to fetch now, each stamped with its lease
        (``lease``, ``lease_deadline``). An empty list means "nothing ready
        now", not "finished": ask ``is_finished()`` for that."""

    async def ack(self, request: Request, record: FetchRecord) -> bool:
        """The leased ``request`` is done for good (fetched, or failed past its
        retries). False: its lease had expired and the request went to another
        holder, so this ack changed nothing (the page may be recorded twice;
        records carry the fingerprint to tell)."""

    async def release(self, request: Request) -> None:
        """Give a leased request back unfetched; it will be leased again (with
        a new token). An expired lease's release is ignored."""

    async def extend(self, requests: Sequence[Request]) -> list[Request]:
        """Push the deadline of these leases to ``lease_ttl`` from now (a
        heartbeat, due well before ``lease_deadline``); return those whose
        lease was lost: the caller must drop them without ack or release."""

    async def is_finished(self) -> bool:
        """True when nothing is queued and nothing is leased, by any holder."""

    async def statistics(self) -> FrontierStats: ...

    async def close(self) -> None: ...


class CheckpointOutput(Protocol):
    """What a checkpoint needs of an output (every ``Output`` whose ``resumable`` is true).

    Reopened for a resumed crawl with ``resume_at=`` the mark of the last
    checkpoint, the output drops whatever was written after it.
    """

    path: str

    def flush(self) -> None:
        """Hand every buffered record to the OS; raise ``OutputError`` if it cannot."""

    def tell(self) -> Any:
        """Where the output ends after the flush, as a JSON value: a byte
        offset, or the last row id of each table."""

    def fsync(self) -> None:
        """Make the flushed records durable (may run on a worker thread)."""


@runtime_checkable
class Checkpointing(Protocol):
    """A frontier whose state survives the process, committed at checkpoints.

    Between two checkpoints its changes live in memory only; a crash returns
    it to the last checkpoint, when the output ended at the recorded offset.
    ``add``, ``ack`` and ``release`` must not suspend, so that a record written
    and its request acked are never split by a checkpoint.
    """

    async def checkpoint(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        """Flush the outputs and commit every change so far with their marks.

        Raises ``OutputError`` or ``StateError`` if either cannot be written;
        then the state stays at the previous checkpoint and the crawl must stop.
        """

    async def run_checkpoints(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        """Checkpoint periodically until cancelled (errors as ``checkpoint``)."""
