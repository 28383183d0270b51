"""Checkpoints: the outputs flushed and fsynced, then every change since the
last checkpoint committed in one transaction with where each output ends.

Taken on the event loop in one synchronous step (outputs flushed, marks
noted, buffers swapped), written on a worker thread; see docs/state.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import OutputError, StateError
from ...urls import host_of
from ._db import StateFile
from ._rows import QUEUED, row_of, signed

if TYPE_CHECKING:
    from ...http import Request
    from ..base import CheckpointOutput


@dataclass(slots=True)
class _Snapshot:
    """The changes one checkpoint commits (taken on the loop, written on a thread)."""

    inserts: list[tuple[int, Request]]
    acks: list[tuple[int, int, str | None, str]]  # rowid, state, error, url
    claims: list[int]
    robots: list[tuple[str, float, str]]
    marks: dict[str, Any] | None  # output path -> where it ended (None: no outputs)
    in_flight: int
    pages: int


class Checkpoints(StateFile):
    """``Checkpointing`` for the SQLite frontier."""

    checkpoint_interval: float  # seconds between periodic checkpoints

    async def checkpoint(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        async with self._ck_lock:
            if self._error is not None:
                raise self._error
            if self._con is None:
                raise StateError(f"{self.path} is closed")
            outs = _outputs(outputs)
            try:
                marks = None
                if outs:
                    marks = {}
                    for o in outs:
                        o.flush()
                        marks[os.path.abspath(o.path)] = o.tell()
            except OutputError as e:
                self._error = e
                raise
            snap = _Snapshot(self._inserts, self._acks, self._claim_log, self._robots_log,
                             marks, self._leased, self.pages_done)
            self._inserts, self._acks, self._claim_log, self._robots_log = [], [], [], []
            top = self._next_id - 1
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, self._commit, snap, outs)
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                # The commit runs on: wait for it, so no two ever overlap.
                await asyncio.wait({fut})
                self._committed_ok(fut, top, marks)
                raise
            except Exception:  # raised by _committed_ok below, as a StateError
                pass
            self._committed_ok(fut, top, marks)

    def _committed_ok(
        self, fut: asyncio.Future[None], top: int, marks: dict[str, Any] | None
    ) -> None:
        exc = fut.exception()
        if exc is not None:
            self._error = exc if isinstance(exc, OutputError | StateError) else StateError(
                f"cannot write {self.path}: {exc}")
            raise self._error
        self._committed = top
        if marks is not None:
            self.outputs = marks
        mem = self._mem
        while mem and mem[0][0] <= top:
            mem.popleft()  # readable from the file from now on

    async def run_checkpoints(
        self, outputs: CheckpointOutput | Sequence[CheckpointOutput] | None
    ) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.checkpoint_interval):
                    await self._due.wait()
            self._due.clear()
            await self.checkpoint(outputs)

    def _commit(self, snap: _Snapshot, outputs: list[CheckpointOutput]) -> None:
        """Write one checkpoint (on a worker thread): outputs first, then the state."""
        for o in outputs:
            o.fsync()  # a mark we record must never point past durable data
        con = self._con
        assert con is not None
        acked = {rid: (state, err, url) for rid, state, err, url in snap.acks}
        hosts: dict[str, list[int]] = {}
        rows = []
        for rid, r in snap.inserts:
            h = hosts.setdefault(host_of(r.url), [0, 0, 0])
            a = acked.pop(rid, None)
            state, err = (a[0], a[1]) if a else (QUEUED, None)
            h[state] += 1
            rows.append(row_of(rid, r, state, err))
        updates = []
        for rid, (state, err, url) in acked.items():
            h = hosts.setdefault(host_of(url), [0, 0, 0])
            h[QUEUED] -= 1
            h[state] += 1
            updates.append((state, err, rid))
        try:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.executemany("UPDATE requests SET state = ?, error = ? WHERE id = ?", updates)
            con.executemany("INSERT OR IGNORE INTO claims VALUES (?)",
                            [(signed(fp),) for fp in snap.claims])
            con.executemany("INSERT OR REPLACE INTO robots VALUES (?, ?, ?)", snap.robots)
            con.executemany(
                "INSERT INTO hosts VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET "
                "queued = queued + excluded.queued, done = done + excluded.done, "
                "failed = failed + excluded.failed",
                [(h, q, d, f) for h, (q, d, f) in hosts.items()])
            meta = [("checkpoint_at", repr(time.time())), ("in_flight", str(snap.in_flight)),
                    ("pages", str(snap.pages))]
            if snap.marks is not None:
                meta.append(("outputs", json.dumps(snap.marks)))
            con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            con.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise StateError(f"cannot write the crawl state {self.path}: {e}") from None


def _outputs(
    outputs: CheckpointOutput | Sequence[CheckpointOutput] | None,
) -> list[CheckpointOutput]:
    if outputs is None:
        return []
    if isinstance(outputs, Sequence):
        return list(outputs)
    return [outputs]
