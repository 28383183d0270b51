"""Which failure an exception from aiohttp or the socket stands for: the
stable ``kind`` a record carries, and whether it is worth another try.

aiohttp wraps its parser's errors once on the pool's path and twice on the
session's, so the cause is looked for down the ``__cause__`` chain.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import aiohttp
from aiohttp.http import HttpProcessingError
from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError, LineTooLong

from .. import errors
from ..errors import ErrorKind, FetchError, TooLarge
from . import wire

__all__ = ["fetch_error", "undecodable", "unreachable"]


def fetch_error(e: BaseException) -> FetchError | None:
    """The ``FetchError`` an exception from aiohttp or the socket stands for."""
    if isinstance(e, TimeoutError):
        return FetchError(f"no complete answer within the timeout ({str(e) or 'total'})",
                          errors.TIMEOUT)
    if isinstance(e, aiohttp.InvalidURL):
        return FetchError(f"invalid URL: {e}", errors.INVALID_URL)
    if (bad := undecodable(e)) is not None:
        return FetchError(f"{type(bad).__name__}: {bad.message} (the body is not what its "
                          f"Content-Encoding says)", errors.CONTENT_ENCODING_ERROR)
    if (head := _head_past_bounds(e)) is not None:
        lim = wire.HEADER_LIMITS
        return TooLarge(f"{type(head).__name__}: the answer's head is past its bounds (a "
                        f"{lim['max_line_size']:,}-byte status line, {lim['max_headers']} "
                        f"fields of {lim['max_field_size']:,} bytes): {head.message}")
    if isinstance(e, aiohttp.ClientError | HttpProcessingError | OSError | UnicodeError
                  | ValueError):
        return FetchError(f"{type(e).__name__}: {e}", unreachable(e) or errors.CONNECTION_ERROR)
    return None


def _head_past_bounds(e: BaseException) -> BadHttpMessage | None:
    """aiohttp's parser error under ``e`` (which wraps it once on the pool,
    twice on the session) if it says the answer's head is past
    ``wire.HEADER_LIMITS``: a line too long or too many fields. The server
    will send the same head again: ``too_large``, not retried."""
    return next((c for c in _chain(e) if isinstance(c, LineTooLong) or (
        isinstance(c, BadHttpMessage) and "Too many headers" in c.message)), None)


def undecodable(e: BaseException) -> ContentEncodingError | None:
    """aiohttp's error under ``e`` if the body is not what its Content-Encoding
    says (plain text as gzip, a deflate stream cut short): the server will
    send the same body again, so it is not retried, as browsers and Scrapy
    do not retry it."""
    return next((c for c in _chain(e) if isinstance(c, ContentEncodingError)), None)


def _chain(e: BaseException) -> Iterator[BaseException]:
    """``e`` and the exceptions it was raised from, outermost first."""
    cause: BaseException | None = e
    while cause is not None:
        yield cause
        cause = cause.__cause__


def unreachable(e: BaseException) -> ErrorKind | None:
    """Which way the host (or the proxy) could not be reached at all, if that
    is what ``e`` says: the session's connector errors, or a socket's own
    (the pool's, in ``wire.Pool._connect``)."""
    if isinstance(e, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return errors.PROXY_ERROR  # before its base class, ClientConnectorError
    if isinstance(e, aiohttp.ClientSSLError | ssl.SSLError):
        return errors.TLS_ERROR
    if isinstance(e, aiohttp.ClientConnectorDNSError | socket.gaierror):
        return errors.DNS_ERROR
    if isinstance(e, aiohttp.ClientConnectorError):
        e = e.os_error
    # Happy Eyeballs raises one OSError for all the addresses, refused alike.
    if isinstance(e, OSError) and e.errno == errno.ECONNREFUSED:
        return errors.CONNECTION_REFUSED
    return None
