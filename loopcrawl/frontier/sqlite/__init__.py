"""The persistent frontier behind ``--state``: one SQLite file, split by job.

``queue`` (the ``Frontier`` protocol: the queue and its leases), ``checkpoint``
(committing it with the outputs), ``robots`` (robots.txt kept across runs),
``runs`` (what a run records before it starts), ``status`` (``loopcrawl
status``), and under them ``_db`` (the file: lock, schema, checks, loading)
and ``_rows`` (a request as a row). Layers look down only: ``_rows`` <
``_db`` < the jobs < ``queue``. ``read_only`` is the one way in for readers
outside (``report`` opens a state file it must not change).
"""

from __future__ import annotations

from ._db import read_only
from .queue import SqliteFrontier
from .status import HostCounts, StateStatus, read_status

__all__ = ["HostCounts", "SqliteFrontier", "StateStatus", "read_only", "read_status"]
