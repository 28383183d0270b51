"""Every private aiohttp name loopcrawl relies on, and nowhere else.

The keep-alive pool (``wire.py``) runs on aiohttp's internal protocol class,
``ResponseHandler`` (the session's own, with its C parser, header limits and
bounded decompression), and asks aiohttp for two things it keeps private:
the verified TLS context it built at import (loading the CA store again
costs ~40 ms) and the ``Accept-Encoding`` its session sends. None of this is
aiohttp's public API: a release may change any of it. So it is reached only
here, each name with a fallback where one exists, and whether the pool may
run at all is not guessed from signatures but decided by ``wire.self_test``,
which drives one canned exchange through these names exactly as the pool
does. ``pyproject.toml`` pins aiohttp to the minor versions that test passed on.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

try:
    from aiohttp.client_proto import ResponseHandler
except ImportError:  # pragma: no cover - an aiohttp that moved it: the self-test fails
    ResponseHandler = None  # type: ignore[assignment,misc]

__all__ = ["ResponseHandler", "accept_encoding", "new_handler", "read_responses",
           "verified_context"]


def new_handler(loop: asyncio.AbstractEventLoop) -> ResponseHandler:
    """A protocol for one pooled connection (what ``create_connection`` is given)."""
    return ResponseHandler(loop)


def read_responses(proto: ResponseHandler, max_line_size: int) -> None:
    """Arm ``proto``'s parser once for the connection's life: it reads one
    response after another (aiohttp arms it per request). ``read_until_eof``:
    a response with neither length nor chunking ends when the server closes."""
    proto.set_response_params(read_until_eof=True, max_line_size=max_line_size)


def verified_context() -> ssl.SSLContext:
    """aiohttp's verified context when it has one, else a default one of our own
    (the system's CA store, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured)."""
    ctx = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
    if isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED:
        return ctx
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def accept_encoding() -> str:
    """What aiohttp's session asks for: the encodings it can inflate here (a
    test checks that the pool and the session send the same headers)."""
    try:
        from aiohttp.client_reqrep import _gen_default_accept_encoding

        return str(_gen_default_accept_encoding())
    except ImportError:  # a private helper of aiohttp's: gone in some version
        return "gzip, deflate"
