"""robots.txt kept across runs (``net.robots.RobotsStore``): read from the
file, written with the next checkpoint."""

from __future__ import annotations

import time

from ._db import StateFile

ROBOTS_TTL = 24 * 3600.0  # seconds: RFC 9309 §2.4 caps the use of a cached robots.txt


class RobotsRows(StateFile):
    """The ``robots`` table: one row per host, its robots.txt as fetched."""

    def robots_get(self, host: str) -> str | None:
        rows = self._read("SELECT fetched_at, body FROM robots WHERE host = ?", (host,))
        if not rows or time.time() - rows[0][0] > ROBOTS_TTL:
            return None
        return str(rows[0][1])

    def robots_put(self, host: str, text: str) -> None:
        self._robots_log.append((host, time.time(), text))  # with the next checkpoint
