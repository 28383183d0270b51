"""``loopcrawl status``: what a state file holds, read without its lock, so
it works while a crawl runs on the file (as of that crawl's last checkpoint)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from ...errors import StateError
from ._db import check_db, check_file, read_meta, read_only

__all__ = ["HostCounts", "StateStatus", "read_status"]


@dataclass(frozen=True, slots=True)
class HostCounts:
    host: str
    queued: int
    done: int
    failed: int


@dataclass(frozen=True, slots=True)
class StateStatus:
    """What ``loopcrawl status`` prints: the state as of its last checkpoint."""

    path: str
    running_pid: int | None  # the crawl holding the file now, if any
    queued: int
    in_flight: int  # leased by the running crawl: being fetched or about to be
    done: int
    failed: int
    seen: int
    outputs: dict[str, Any]  # path -> its mark at the last checkpoint (bytes, or row ids)
    checkpoint_at: float | None  # Unix time
    top_hosts: tuple[HostCounts, ...]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["top_hosts"] = [
            {"host": h.host, "queued": h.queued, "done": h.done, "failed": h.failed}
            for h in self.top_hosts
        ]
        return d


def read_status(path: str, *, top: int = 10) -> StateStatus:
    """Counts and top hosts of the state file ``path``, read-only; works while
    a crawl runs on it (its figures are then those of its last checkpoint)."""
    if not os.path.isfile(path):
        raise StateError(f"{path} does not exist")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if check_file(path, fd):
            raise StateError(f"{path} is empty: no crawl has checkpointed into it yet")
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            running = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            running = True
    finally:
        os.close(fd)  # before SQLite opens the file (POSIX locks are per process)
    try:
        con = sqlite3.connect(read_only(path), uri=True, timeout=5)
    except sqlite3.Error as e:
        raise StateError(f"cannot read {path}: {e}") from None
    try:
        if check_db(path, con):
            raise StateError(f"{path} is empty: no crawl has checkpointed into it yet")
        try:
            meta = read_meta(con)
            q, d, f = con.execute(
                "SELECT total(queued), total(done), total(failed) FROM hosts").fetchone()
            seen = con.execute("SELECT count(*) FROM requests").fetchone()[0]
            seen += con.execute("SELECT count(*) FROM claims").fetchone()[0]
            hosts = tuple(HostCounts(*row) for row in con.execute(
                "SELECT host, queued, done, failed FROM hosts "
                "ORDER BY queued + done + failed DESC, host LIMIT ?", (top,)))
        except sqlite3.Error as e:
            raise StateError(f"cannot read {path}: {e}") from None
    finally:
        con.close()
    in_flight = int(meta.get("in_flight", "0")) if running else 0
    ck = meta.get("checkpoint_at")
    return StateStatus(
        path=path,
        running_pid=(int(meta.get("pid", "0")) or None) if running else None,
        queued=max(int(q) - in_flight, 0),
        in_flight=in_flight,
        done=int(d),
        failed=int(f),
        seen=seen,
        outputs=json.loads(meta.get("outputs", "{}")),
        checkpoint_at=float(ck) if ck else None,
        top_hosts=hosts,
    )
