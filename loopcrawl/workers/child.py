"""A worker process of ``--workers N``: fetch and parse what the coordinator sends.

The coordinator starts it (``pool._BOOT``) with FD, one end of a
socketpair. It owns a ``Fetcher`` (its own keep-alive pool and cookie jar) and
a ``LinkParser``, and answers each ``get`` with the response and, for an
HTML page the link follower will read, its resolved links. Redirect hops are
vetted by the coordinator (scope, robots.txt, seen set) through a ``hop``
question. It ends when the coordinator closes the connection, and with the
coordinator: the kernel kills it if the coordinator dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

from multidict import CIMultiDict

from ..core.runtime import new_event_loop, tune_malloc
from ..core.traps import link_hashes
from ..errors import FetchError
from ..links import LinkParser, ResolvedLinks
from ..net.fetcher import Fetcher
from ..urls import fingerprints
from .channel import Channel

# Links this worker has reported, remembered (fingerprint -> the depth of the
# page they were on) up to this many, then forgotten all at once.
_REPORTED = 1 << 18


class _Worker:
    def __init__(self, channel: Channel, fetcher: Fetcher, parser: LinkParser) -> None:
        self.channel = channel
        self.fetcher = fetcher
        self.parser = parser
        self.reported: dict[int, int] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.hops: dict[int, asyncio.Future[Any]] = {}

    async def get(self, rid: int, url: str, method: str, headers: Any, body: bytes | None,
                  cookies: Any, max_size: int | None, truncate: bool, parse: bool,
                  checks_hops: bool, waits_turns: bool, depth: int) -> None:
        send = self.channel.send
        try:
            f = await self.fetcher.fetch(
                url, max_size=max_size, truncate=truncate, method=method, headers=headers,
                body=body, cookies=cookies,
                check_redirect=(lambda to: self._ask(rid, "hop", to)) if checks_hops else None,
                wait_turn=(lambda to: self._ask(rid, "turn", to)) if waits_turns else None)
            if parse and 200 <= f.status < 300 and f.is_html:
                f.links = self._news(self.parser.parse(f.url, f.body, f.charset), depth)
            # aiohttp's header views do not pickle; a CIMultiDict keeps repeats.
            if f.headers is not None:
                f.headers = CIMultiDict(f.headers)
            if f.request_headers is not None:
                f.request_headers = CIMultiDict(f.request_headers)
        except FetchError as e:
            send(("err", rid, str(e.kind), str(e)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: the coordinator records it, the worker goes on
            send(("bug", rid, f"{type(e).__name__}: {e}"))
        else:
            send(("ok", rid, f))
        finally:
            self.tasks.pop(rid, None)
            self.hops.pop(rid, None)

    def _news(self, links: ResolvedLinks, depth: int) -> ResolvedLinks:
        """Only the links this worker has not reported before from a page as
        shallow: ~29 of a page's 30 were (menus, footers), and the coordinator
        would only find them in its seen set. A link first reported from a
        deeper page is reported again (the coordinator may have left it out
        for its depth then). The hashes of all its links go along (traps)."""
        urls = links.urls
        links.found, links.hashes = len(urls), link_hashes(urls)
        reported = self.reported
        if len(reported) >= _REPORTED:
            reported.clear()
        new = []
        for u, fp in zip(urls, fingerprints(urls), strict=True):
            was = reported.get(fp)
            if was is None or depth < was:
                reported[fp] = depth
                new.append(u)
        links.urls = new
        return links

    async def _ask(self, rid: int, tag: str, url: str) -> Any:
        """Ask the coordinator about a redirect hop of request ``rid``, and wait
        for its answer ("hop": the verdict of its check; "turn": None)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.hops[rid] = fut
        self.channel.send((tag, rid, url))
        return await fut


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    channel = Channel(reader, writer)
    first = await channel.receive()
    if not first or first[0][0] != "init":
        return
    settings = first[0][1]
    async with Fetcher(settings) as fetcher, asyncio.TaskGroup() as tg:
        w = _Worker(channel, fetcher, LinkParser(settings.max_links_per_page))
        try:
            while (batch := await channel.receive()) is not None:
                for msg in batch:
                    tag = msg[0]
                    if tag == "get":
                        w.tasks[msg[1]] = tg.create_task(w.get(*msg[1:]))
                    elif tag == "hop" or tag == "turn":
                        fut = w.hops.pop(msg[1], None)
                        if fut is not None and not fut.done():
                            fut.set_result(msg[2])
                    elif tag == "cancel":
                        task = w.tasks.pop(msg[1], None)
                        if task is not None:
                            task.cancel()
        finally:
            for task in list(w.tasks.values()):
                task.cancel()
            await channel.close()


def main(fd: int) -> None:
    """Serve the coordinator on ``fd``. Started by ``pool._BOOT``, which has
    tied this process's life to the coordinator's already."""
    # The coordinator decides what Ctrl-C and SIGTERM mean; it closes the
    # connection (or the kernel kills this process with it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    tune_malloc()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(fd))
