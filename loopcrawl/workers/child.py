"""A worker process of ``--workers N``: fetch and parse what the coordinator sends.

The coordinator starts it (``pool._BOOT``) with FD, one end of a
socketpair. It owns a ``Fetcher`` (its own keep-alive pool, and a cookie jar,
``SharedJar``, kept in step with the other workers' through the coordinator: ``cookies.py``),
a ``LinkParser`` and, in a spider crawl, the spider (``spider/remote.py``). It
answers each ``get`` with the response as a tuple and, for an HTML page the
link follower will read, its new links, the hashes of all of them and its
comparison with the page that linked to it (``traps.compare``), or, for a
request with a spider callback, what the callback yielded. Redirect hops are
vetted by the coordinator (scope, robots.txt, seen set) through a ``hop``
question. It ends when the coordinator closes the connection, and with the
coordinator: the kernel kills it if the coordinator dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from yarl import URL

from ..core.runtime import new_event_loop, tune_gc, tune_malloc
from ..core.traps import Parent, compare, link_hashes
from ..errors import FetchError
from ..links import LinkParser, ResolvedLinks
from ..net.fetcher import Fetcher
from ..spider.base import Spider
from ..spider.remote import CallbackError, load_spec, run_call
from .channel import Channel

# Links this worker has reported, remembered (the URL -> the depth of the page
# they were on) up to this many, or URLs of this many characters in all, then
# forgotten all at once.
_REPORTED = 1 << 18
_REPORTED_CHARS = 1 << 24


class SharedJar(aiohttp.CookieJar):
    """A worker's jar: what a response sets is stored, and reported with
    ``report(fields, url)``; ``apply`` stores what another worker's response set."""

    def __init__(self, report: Callable[[list[str], str], None]) -> None:
        super().__init__(unsafe=True)  # IP-address hosts too, as the crawl's own jar
        self._report = report

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        super().update_cookies_from_headers(headers, response_url)
        if headers:
            self._report(list(headers), str(response_url))

    def apply(self, fields: list[str], url: str) -> None:
        super().update_cookies_from_headers(fields, URL(url, encoded=True))


class _Worker:
    def __init__(self, channel: Channel, fetcher: Fetcher, parser: LinkParser,
                 full: bool, spider: Spider | None) -> None:
        self.channel = channel
        self.full = full  # send headers and the request's body back too
        self.spider = spider  # runs the callbacks of the requests that name one
        self.fetcher = fetcher
        self.parser = parser
        self.reported: dict[str, int] = {}
        self.reported_chars = 0
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.hops: dict[int, asyncio.Future[Any]] = {}

    async def get(self, rid: int, url: str, method: str, headers: Any, body: bytes | None,
                  cookies: Any, max_size: int | None, truncate: bool, parse: bool,
                  checks_hops: bool, waits_turns: bool, depth: int, call: bytes | None,
                  parent: Parent | None) -> None:
        send = self.channel.send
        try:
            f = await self.fetcher.fetch(
                url, max_size=max_size, truncate=truncate, method=method, headers=headers,
                body=body, cookies=cookies,
                check_redirect=(lambda to: self._ask(rid, "hop", to)) if checks_hops else None,
                wait_turn=(lambda to: self._ask(rid, "turn", to)) if waits_turns else None)
            links, body = None, f.body
            if parse and 200 <= f.status < 300 and f.is_html:
                links = self._news(self.parser.parse(f.url, f.body, f.charset), depth, f.body,
                                   parent)
                if not self.full:  # the coordinator needs its length and words only
                    body = b""
            out = None
            if call is not None and 200 <= f.status < 300:
                out = await self._callback(call, f)
            msg: tuple[Any, ...] = ("ok", rid, f.url, f.status, f.content_type, f.charset, body,
                                    f.redirects, f.retry_after, f.method, links, out)
            if self.full:  # aiohttp's header views do not pickle; pairs keep repeats
                msg += (_pairs(f.headers), _pairs(f.request_headers), f.request_body)
        except FetchError as e:
            send(("err", rid, str(e.kind), str(e)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: the coordinator records it, the worker goes on
            send(("bug", rid, f"{type(e).__name__}: {e}"))
        else:
            send(msg)
        finally:
            self.tasks.pop(rid, None)
            self.hops.pop(rid, None)

    def _news(self, links: ResolvedLinks, depth: int, body: bytes,
              parent: Parent | None) -> tuple[Any, ...]:
        """Only the links this worker has not reported before from a page as
        shallow: ~29 of a page's 30 were (menus, footers), and the coordinator
        would only find them in its seen set. A link first reported from a
        deeper page is reported again (the coordinator may have left it out
        for its depth then). The hashes of all its links go along (traps)."""
        urls = links.urls
        # The URLs themselves are the keys: link_hashes has just computed (and
        # the string keeps) each one's hash(), so a lookup hashes nothing,
        # where a fingerprint encoded and hashed every link of every page.
        hashes = link_hashes(urls)
        reported = self.reported
        if len(reported) >= _REPORTED or self.reported_chars >= _REPORTED_CHARS:
            reported.clear()
            self.reported_chars = 0
        get = reported.get
        new = []
        for u in urls:
            was = get(u)
            if was is None or depth < was:
                if was is None:
                    self.reported_chars += len(u)
                reported[u] = depth
                new.append(u)
        words, similar = compare(body, hashes, parent)
        return (links.title, new, links.truncated, links.unfollowable, len(urls), hashes,
                len(body), words, similar)

    async def _callback(self, call: bytes, f: Any) -> bytes:
        """Run the spider callback of ``call`` on ``f`` (``spider.remote``)."""
        if isinstance(self.spider, BaseException):
            e = self.spider
            return pickle.dumps(([], CallbackError(
                "loading the spider", type(e).__name__,
                f"the worker process could not load the spider: {e}", "")))
        assert self.spider is not None
        return await run_call(self.spider, call, f)

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
    settings, full, spec, cookies, levels = first[0][1:6]
    # What is logged here is logged by the coordinator (its levels, handler, display).
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    logging.getLogger().addHandler(_Forward(channel))
    spider: Any = None
    if spec is not None:
        try:
            spider = load_spec(spec)
        except Exception as e:  # each callback of the crawl reports it
            spider = e
    # What a response sets goes to the coordinator, for the other workers.
    jar = SharedJar(lambda fields, url: channel.send(("jar", 0, fields, url)))
    for fields, url in cookies:
        jar.apply(fields, url)
    async with Fetcher(settings, cookie_jar=jar) as fetcher, asyncio.TaskGroup() as tg:
        w = _Worker(channel, fetcher, LinkParser(settings.max_links_per_page), full,
                    spider)
        # The settings' frame holds whatever the coordinator sent in the same
        # loop turn: a replacement worker is handed its predecessor's requests
        # at once, and they must not be dropped with the rest of that frame.
        batch: list[Any] | None = first[1:]
        try:
            while batch is not None:
                for msg in batch:
                    tag = msg[0]
                    if tag == "get":
                        w.tasks[msg[1]] = tg.create_task(w.get(*msg[1:]))
                    elif tag == "hop" or tag == "turn":
                        fut = w.hops.pop(msg[1], None)
                        if fut is not None and not fut.done():
                            fut.set_result(msg[2])
                    elif tag == "jar":  # set by another worker's response
                        jar.apply(msg[1], msg[2])
                    elif tag == "cancel":
                        task = w.tasks.pop(msg[1], None)
                        if task is not None:
                            task.cancel()
                batch = await channel.receive()
        finally:
            for task in list(w.tasks.values()):
                task.cancel()
            await channel.close()


class _Forward(logging.Handler):
    """Sends each log record to the coordinator, which logs it as its own."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        except Exception:
            self.handleError(record)
            return
        self._channel.send(("log", 0, record.name, record.levelno, text))


def _pairs(headers: Any) -> list[tuple[str, str]] | None:
    return None if headers is None else list(headers.items())


def main(fd: int) -> None:
    """Serve the coordinator on ``fd``. Started by ``pool._BOOT``, which has
    tied this process's life to the coordinator's already."""
    # The coordinator decides what Ctrl-C and SIGTERM mean; it closes the
    # connection (or the kernel kills this process with it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    tune_malloc()
    tune_gc()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(fd))
