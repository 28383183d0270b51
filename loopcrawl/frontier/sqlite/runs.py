"""What a run records before it starts: the outputs it writes (and where to
cut each back to), its settings, and ``--recrawl-failed``."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import StateError
from ...urls import host_of
from ._db import StateFile
from ._rows import FAILED, QUEUED

if TYPE_CHECKING:
    from ...settings import Settings


class RunSetup(StateFile):
    """Called by the crawl runner between opening the state and crawling."""

    def bind_outputs(self, paths: Sequence[str]) -> list[Any]:
        """Tie the state to these output files; return for each where to cut it
        back to (its ``resume_at``), None for a fresh one.

        Refuses (StateError) another set of outputs than the state was written
        with, once it has done any work: the pages done before would be
        missing from a new output, and resuming one not named would leave it
        behind.
        """
        want = [os.path.abspath(p) for p in paths]
        if set(want) != set(self.outputs):
            if self._done + self._failed > 0:
                if not self.outputs:
                    raise StateError(f"{self.path} holds a crawl that wrote no output; its "
                                     f"pages would be missing from {', '.join(paths)}: start "
                                     "a new state file")
                had = " and ".join(self.outputs)
                raise StateError(f"{self.path} belongs to the crawl writing {had}; pass -o "
                                 f"{had} to resume it (or use a new state file)")
            self.outputs = dict.fromkeys(want)  # nothing done yet: these, from scratch
        assert self._con is not None
        self._con.execute("INSERT OR REPLACE INTO meta VALUES ('outputs', ?)",
                          (json.dumps(self.outputs),))
        return [self.outputs[p] for p in want]

    def note_settings(self, settings: Settings) -> list[str]:
        """Record what this run crawls; return the settings that differ from
        the previous run's (the crawl goes on with the new ones)."""
        new = {
            "seeds": list(settings.seeds), "scope": settings.scope,
            "allow": list(settings.allow), "deny": list(settings.deny),
            "depth": settings.depth, "max_pages": settings.max_pages,
            "obey_robots": settings.obey_robots, "user_agent": settings.user_agent,
        }
        old: dict[str, Any] = json.loads(self.settings_json) if self.settings_json else new
        changed = [k for k in new if k != "seeds" and old.get(k) != new[k]]
        merged = dict(new, seeds=sorted(set(old.get("seeds", [])) | set(settings.seeds)))
        self.settings_json = json.dumps(merged, sort_keys=True)
        assert self._con is not None
        self._con.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)",
                          (self.settings_json,))
        return changed

    def requeue_failed(self) -> int:
        """Queue every failed request again (``--recrawl-failed``); return how many.

        Committed at once: a kill before they are fetched leaves them queued.
        """
        con = self._con
        assert con is not None
        try:
            con.execute("BEGIN IMMEDIATE")
            rows = con.execute("SELECT url FROM requests WHERE state = ?", (FAILED,)).fetchall()
            con.execute("UPDATE requests SET state = ?, error = NULL, retries = 0 "
                        "WHERE state = ?", (QUEUED, FAILED))
            per_host = Counter(host_of(u) for (u,) in rows)
            con.executemany("UPDATE hosts SET queued = queued + ?, failed = failed - ? "
                            "WHERE host = ?", [(k, k, h) for h, k in per_host.items()])
            con.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise StateError(f"cannot write {self.path}: {e}") from None
        self._queued += len(rows)
        self._failed -= len(rows)
        self._load_ranked()
        return len(rows)
