"""Multi-process + coroutines: ``--workers N``.

The process that runs the crawl (the coordinator) keeps everything that must
be global: the frontier and its seen set, the per-host politeness slots, the
page budget and depth, robots.txt, trap limits, the outputs, the display. N
worker processes, each with its own event loop and thousands of coroutines,
do what costs CPU per page: the HTTP exchange (TLS, parsing, decompression)
and reading the page's links. ``ProcessFetcher`` is the seam: it has the
``Fetcher``'s ``fetch()``, so the engine runs unchanged on top of it.
"""

from __future__ import annotations

from .pool import ProcessFetcher, WorkerLost, usable_cores

__all__ = ["ProcessFetcher", "WorkerLost", "usable_cores"]
