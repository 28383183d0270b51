"""Process-wide tuning for a crawl: the event loop, and malloc."""

from __future__ import annotations

import asyncio
import gc
import sys

__all__ = ["new_event_loop", "tune_gc", "tune_malloc"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_GC_YOUNG = 50_000  # container allocations between passes over the youngest generation
_GC_MIDDLE = 20  # passes over the youngest between passes over the middle one (default 10)


def tune_malloc() -> bool:
    """Stop glibc's malloc from returning memory to the kernel after every page.

    Each lexbor parse allocates ~100 KB of pools and frees them. With glibc's
    defaults that memory goes back to the kernel at once (``brk`` shrinks the
    heap, or ``munmap``), and the next page faults it in again, zeroed: 3
    syscalls and ~25 page faults a page, which doubled the parse's cost. Here
    the heap keeps up to 16 MiB free at its top, grows 1 MiB at a time, and
    blocks under 4 MiB come from the heap. Peak RSS does not change; the
    process only keeps what it already used. Process-wide, so the CLI and
    ``crawl()`` call it, not ``Crawler``. False where there is no glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the libc this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # musl has mallopt too, as a no-op that returns 0.
    return all([mallopt(_M_MMAP_THRESHOLD, 4 << 20), mallopt(_M_TRIM_THRESHOLD, 16 << 20),
                mallopt(_M_TOP_PAD, 1 << 20)])


def tune_gc() -> None:
    """Keep what start-up built out of the cyclic collector's full passes.

    A crawl's long-lived objects (queued requests, the trap guard's pages)
    grow, and every time they grow by a quarter Python runs a full
    collection, which also walked every function, class and module dict
    imported at start-up: objects that are never garbage. ``gc.freeze()``
    moves everything alive now to the permanent generation, so full passes
    walk only what the crawl made. Process-wide and once, after the imports:
    the CLI and ``crawl()`` call it, beside ``tune_malloc``.

    The youngest generation is also collected every ``_GC_YOUNG`` container
    allocations instead of 700, and the middle one every ``_GC_MIDDLE`` of
    those: a page allocates a few hundred, most of them freed by their
    reference counts before any pass, so passes every few pages mostly walked
    objects about to go anyway. Cyclic garbage (an exception and its frames)
    waits longer: about a hundred pages' allocations.
    """
    gc.freeze()
    _, _, oldest = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG, _GC_MIDDLE, oldest)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (about twice as fast per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
