"""The frontier: the queue of requests to fetch and the set of URLs seen.

Every implementation keeps one contract (``Frontier``); the engine knows no
other. ``memory`` is the default for a crawl without ``--state``; ``sqlite``
(imported on demand) is the persistent, resumable one behind ``--state``.
"""

from __future__ import annotations

from .base import Checkpointing, CheckpointOutput, Frontier, FrontierStats
from .memory import MemoryFrontier

__all__ = ["CheckpointOutput", "Checkpointing", "Frontier", "FrontierStats", "MemoryFrontier"]
