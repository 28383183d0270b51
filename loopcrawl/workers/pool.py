"""The coordinator's side of ``--workers N``: worker processes behind ``fetch()``.

``ProcessFetcher`` starts N worker processes (``child.py``) and hands each
``fetch()`` to the one with the fewest requests in flight. It has the
``Fetcher``'s ``fetch()``, so the engine above it is the one-process engine:
its scheduler decides what may start now for every host, so politeness, the
page budget and depth hold for the crawl as a whole; robots.txt is fetched
once per host (through a worker), and every record is written by this
process. A worker that dies is reported and replaced; its requests in flight
fail with ``WorkerLost``, which the engine puts back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from ..core.traps import Parent
from ..errors import FetchError, LoopcrawlError
from ..links import ResolvedLinks
from ..net.fetched import Fetched, RedirectCheck, TurnWait
from ..settings import Settings
from ..spider.remote import SpiderSpec
from .channel import Channel
from .cookies import JarLog

__all__ = ["ProcessFetcher", "WorkerLost", "usable_cores"]

_log = logging.getLogger("loopcrawl.workers")

# Beyond the request's own total timeout: how long the coordinator waits for a
# worker's answer before it takes the worker for stuck (seconds).
_ANSWER_GRACE = 30.0
# A worker must send its first answer (or take a request) within this; and it
# is given this long to exit when the crawl ends before it is killed.
_EXIT_WAIT = 2.0


# How a worker process starts: before anything else (importing loopcrawl takes
# a good part of a second), ask Linux to SIGKILL it when the coordinator dies
# (PR_SET_PDEATHSIG = 1, SIGKILL = 9), and leave at once if that happened
# already; then import and serve. Elsewhere the closed socket ends it.
_BOOT = """\
import os, sys
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)
if os.getppid() != int(sys.argv[2]):
    sys.exit(0)
from loopcrawl.workers.child import main
main(int(sys.argv[1]))
"""


def usable_cores() -> int:
    """The cores this process may run on (``--workers auto``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class WorkerLost(LoopcrawlError):
    """The worker process fetching a request died; the request goes back to
    the queue (it is not a failure of the URL)."""


@dataclass(eq=False)
class _Worker:
    slot: int
    proc: asyncio.subprocess.Process
    channel: Channel
    # request id -> (its answer, the engine's redirect check, its wait for a
    # turn, when it was sent: loop time)
    pending: dict[int, tuple[asyncio.Future[Fetched], RedirectCheck | None,
                             TurnWait | None, float]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True


@dataclass(frozen=True, slots=True)
class WorkersStats:
    workers: int
    started: int  # processes started, replacements included
    lost: int  # workers that died during the crawl
    requests_lost: int  # requests in flight on them, queued again
    frames_out: int  # coordinator -> workers
    messages_out: int
    bytes_out: int
    frames_in: int  # workers -> coordinator
    messages_in: int
    bytes_in: int
    cpu_s: float  # the workers' CPU so far, those ended included (user + system)
    cpu_s_each: list[float]  # the same by worker slot (a replacement adds to its slot's)
    requests_each: list[int]  # requests sent to each worker slot
    coordinator_cpu_s: float  # this process's CPU so far (user + system)


class ProcessFetcher:
    """N worker processes, used as one ``Fetcher``."""

    def __init__(self, settings: Settings, workers: int, *, full: bool = False,
                 spider: SpiderSpec | None = None) -> None:
        self.settings = settings
        self.n = workers
        # Responses come back with their headers and the request's (WARC
        # records, spiders' responses); a crawl that only follows links needs
        # neither, and unpickling them was a third of the coordinator's work.
        self.full = full
        self.spider = spider  # loaded by each worker, which runs the callbacks
        self._jar = JarLog()  # the cookies the workers reported (cookies.py)
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._closing = False
        # One hash seed for every worker, so that what they compute the same
        # way stays comparable (Python salts str and bytes hashes per process).
        self._env = {**os.environ, "PYTHONHASHSEED": str(random.randrange(1, 2**32))}
        self._tasks: set[asyncio.Task[Any]] = set()  # hop checks in progress
        self._started = self._lost = self._requests_lost = 0
        self._retired_io = [0] * len(_COUNTERS)  # channel counters of workers gone
        self._retired_cpu = [0.0] * workers  # CPU seconds of workers gone, by slot
        self._requests = [0] * workers  # requests sent, by slot
        self._watch: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProcessFetcher:
        try:
            for slot in range(self.n):
                self._workers.append(await self._start(slot))
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_answers(), name="loopcrawl-workers-watch")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
        for t in list(self._tasks):
            t.cancel()
        workers, self._workers = self._workers, []
        for w in workers:
            await w.channel.close()  # EOF: the worker ends its fetches and exits
        for w in workers:
            try:
                await asyncio.wait_for(w.proc.wait(), _EXIT_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
            if w.reader is not None:
                w.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w.reader

    async def _start(self, slot: int) -> _Worker:
        parent, child = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _BOOT, str(child.fileno()), str(os.getpid()),
                pass_fds=(child.fileno(),), env=self._env, stdin=asyncio.subprocess.DEVNULL)
        except OSError as e:
            parent.close()
            raise LoopcrawlError(f"cannot start a worker process: {e}") from None
        finally:
            child.close()
        reader, writer = await asyncio.open_connection(sock=parent)
        w = _Worker(slot, proc, Channel(reader, writer))
        levels = {name: logging.getLogger(name or None).level
                  for name in ("", "loopcrawl", "loopcrawl.spider")}
        w.channel.send(("init", self.settings, self.full, self.spider, self._jar.entries(),
                        levels))
        w.reader = asyncio.get_running_loop().create_task(self._read(w),
                                                          name=f"loopcrawl-worker-{slot}-reader")
        self._started += 1
        return w

    async def fetch(
        self,
        url: str,
        *,
        check_redirect: RedirectCheck | None = None,
        max_size: int | None = None,
        truncate: bool = False,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        cookies: Mapping[str, str] | None = None,
        wait_turn: TurnWait | None = None,
        parse: bool = False,
        depth: int = 0,
        call: bytes | None = None,
        parent: Parent | None = None,
    ) -> Fetched:
        """``Fetcher.fetch`` in a worker process; with ``parse``, an HTML
        page (of ``depth``) comes back with its new links (``Fetched.links``);
        with ``call`` (``spider.remote.call_of``), a 2xx response with what the
        spider's callback yielded on it (``Fetched.callback``); ``parent``:
        the trap guard's record of the page that linked to it, with which the
        worker compares a parsed page (then only its length and words come
        back, not its body, unless ``full``). Raises
        ``FetchError`` as the ``Fetcher`` does, and ``WorkerLost``."""
        fut = self.submit(url, check_redirect, max_size, truncate, method, headers, body,
                          cookies, wait_turn, parse, depth, call, parent)
        try:
            return await fut
        except asyncio.CancelledError:
            fut.cancel()
            self.cancel(fut)
            raise

    def submit(self, url: str, check_redirect: RedirectCheck | None, max_size: int | None,
               truncate: bool, method: str, headers: Mapping[str, str] | None,
               body: bytes | None, cookies: Mapping[str, str] | None,
               wait_turn: TurnWait | None, parse: bool, depth: int,
               call: bytes | None, parent: Parent | None) -> asyncio.Future[Fetched]:
        """``fetch`` without its coroutine (the engine's per-page path awaits
        the future itself): the future of the worker's answer. The answer to a
        request whose future was cancelled meanwhile is dropped; ``cancel``
        also stops its fetch in the worker."""
        workers = self._workers
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Fetched] = loop.create_future()
        if not workers:
            fut.set_exception(WorkerLost("no worker process is running"))
            return fut
        # The worker with the fewest in flight (written out: min() with a key
        # calls a Python function for each worker).
        w = workers[0]
        for other in workers:
            if len(other.pending) < len(w.pending):
                w = other
        rid = next(self._ids)
        self._requests[w.slot] += 1
        w.pending[rid] = (fut, check_redirect, wait_turn, loop.time())
        w.channel.send(("get", rid, url, method, headers, body, cookies, max_size, truncate,
                        parse, check_redirect is not None, wait_turn is not None, depth, call,
                        parent))
        return fut

    def cancel(self, fut: asyncio.Future[Fetched]) -> None:
        """Stop the worker's fetch whose answer ``fut`` awaited (cancelled)."""
        for w in self._workers:
            for rid, entry in w.pending.items():
                if entry[0] is fut:
                    del w.pending[rid]
                    if w.alive:
                        w.channel.send(("cancel", rid))
                    return

    async def _read(self, w: _Worker) -> None:
        pending = w.pending
        while (batch := await w.channel.receive()) is not None:
            for msg in batch:
                tag, rid = msg[0], msg[1]
                if tag == "ok":  # most messages: a page's answer
                    entry = pending.pop(rid, None)
                    if entry is not None and not entry[0].done():
                        entry[0].set_result(_fetched(msg))
                    continue
                if tag == "hop" or tag == "turn":
                    self._answer(w, rid, tag, msg[2])
                    continue
                if tag == "log":  # logged in the worker: logged here, by our rules
                    logging.getLogger(msg[2]).log(msg[3], "%s", msg[4])
                    continue
                if tag == "jar":  # a response set cookies: every worker gets them now
                    self._jar.add(msg[2], msg[3])
                    for other in self._workers:
                        if other is not w and other.alive:
                            other.channel.send(("jar", msg[2], msg[3]))
                    continue
                entry = pending.pop(rid, None)
                if entry is None or entry[0].done():
                    continue  # cancelled meanwhile
                fut = entry[0]
                if tag == "err":
                    fut.set_exception(FetchError(msg[3], msg[2]))
                else:  # "bug": the engine records it as an internal error
                    fut.set_exception(RuntimeError(f"in worker {w.slot}: {msg[2]}"))
        await self._gone(w)

    def _answer(self, w: _Worker, rid: int, tag: str, url: str) -> None:
        """Answer a worker's question about a redirect hop of request ``rid``
        without blocking the reader: "hop", may it go to ``url`` (the engine's
        check: scope, robots.txt, the seen set); "turn", it may go now (the
        host's politeness, as for any request)."""
        entry = w.pending.get(rid)
        if entry is None:
            return
        ask = entry[1] if tag == "hop" else entry[2]
        if ask is None:
            return

        async def answer(ask: Callable[[str], Awaitable[Any]]) -> None:
            verdict = await ask(url)
            if w.alive:
                w.channel.send((tag, rid, verdict))

        task = asyncio.get_running_loop().create_task(answer(ask))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _gone(self, w: _Worker) -> None:
        """``w``'s connection ended: if the crawl is not ending, the worker
        died. Its requests go back to the engine as ``WorkerLost``."""
        w.alive = False
        cpu = _cpu(w.proc.pid)  # while it can still be read (a zombie's /proc)
        code = await w.proc.wait()
        await w.channel.close()  # else its socket is left to the collector (a ResourceWarning)
        self._retired_cpu[w.slot] += cpu
        for i, name in enumerate(_COUNTERS):
            self._retired_io[i] += getattr(w.channel, name)
        lost = list(w.pending.values())
        w.pending.clear()
        for fut, _, _, _ in lost:
            if not fut.done():
                fut.set_exception(WorkerLost(f"worker {w.slot} died"))
        if self._closing:
            return
        self._lost += 1
        self._requests_lost += len(lost)
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        _log.warning("worker %d (pid %d) died (%s); its %d requests in flight go back to "
                     "the queue; starting another", w.slot, w.proc.pid, how, len(lost))
        if w in self._workers:
            self._workers.remove(w)
        try:
            self._workers.append(await self._start(w.slot))
        except LoopcrawlError as e:
            _log.error("%s", e)

    async def _watch_answers(self) -> None:
        """Every wait is bounded: a worker that has left a request unanswered
        past its total timeout and a grace (hung, not dead) is killed, so its
        requests go back to the queue like those of a worker that died. One
        task for all requests, not a timer each."""
        limit = self.settings.timeout + _ANSWER_GRACE
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(limit / 4, 5.0))
            now = loop.time()
            for w in list(self._workers):
                oldest = min((e[3] for e in w.pending.values()), default=now)
                if now - oldest > limit:
                    _log.error("worker %d (pid %s) left a request unanswered for %.0f s; "
                               "replacing it", w.slot, w.proc.pid, now - oldest)
                    with contextlib.suppress(ProcessLookupError):
                        w.proc.kill()

    def statistics(self) -> WorkersStats:
        live = self._workers
        io = [self._retired_io[i] + sum(getattr(w.channel, name) for w in live)
              for i, name in enumerate(_COUNTERS)]
        each = list(self._retired_cpu)
        for w in live:
            each[w.slot] += _cpu(w.proc.pid)
        times = os.times()
        return WorkersStats(self.n, self._started, self._lost, self._requests_lost, io[0], io[1],
                            io[2], io[3], io[4], io[5], round(sum(each), 3),
                            [round(c, 3) for c in each], list(self._requests),
                            round(times.user + times.system, 3))

    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [w.proc.pid for w in self._workers]


# The channel's counters, in WorkersStats's order.
_COUNTERS = ("frames_out", "messages_out", "bytes_out", "frames_in", "messages_in", "bytes_in")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``, from /proc (0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _fetched(msg: tuple[Any, ...]) -> Fetched:
    """The ``Fetched`` of a worker's "ok" (``child._Worker.get``): plain tuples
    cross the socket, since unpickling a dataclass and two ``CIMultiDict``s
    cost ten times what the same fields cost as a tuple."""
    f = Fetched(msg[2], msg[3], msg[4], msg[5], msg[6], msg[7], msg[8], method=msg[9],
                callback=msg[11])
    if (links := msg[10]) is not None:
        f.links = ResolvedLinks(links[0], links[1], links[2], links[3], links[4], links[5],
                                links[6], links[7], links[8])
    if len(msg) > 12:
        f.headers = None if msg[12] is None else CIMultiDict(msg[12])
        f.request_headers = None if msg[13] is None else CIMultiDict(msg[13])
        f.request_body = msg[14]
    return f

