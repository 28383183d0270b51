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
import itertools
import re
import ssl
from typing import Any, TypedDict

import aiohttp

try:
    from aiohttp.client_proto import ResponseHandler
except ImportError:  # pragma: no cover - an aiohttp that moved it: the self-test fails
    ResponseHandler = None  # type: ignore[assignment,misc]

__all__ = ["HeaderLimits", "ResponseHandler", "accept_encoding", "expect_response",
           "new_handler", "read_responses", "verified_context"]


class HeaderLimits(TypedDict):
    """The bounds of aiohttp's response parser on an answer's head, by the
    keyword names ``ClientSession`` and ``set_response_params`` both take."""

    max_line_size: int  # the status line (and a chunk-size line)
    max_field_size: int  # one header field: its value (and name: the first field's only)
    max_headers: int  # header fields in one answer


def new_handler(loop: asyncio.AbstractEventLoop) -> ResponseHandler:
    """A protocol for one pooled connection (what ``create_connection`` is given)."""
    return ResponseHandler(loop)


def read_responses(proto: ResponseHandler, limits: HeaderLimits) -> None:
    """Give ``proto`` its parser, fed through ``_OneAnswer`` (``expect_response``
    renews it for each answer, as aiohttp's session does)."""
    _OneAnswer(proto, limits)  # installs itself as proto's parser


def expect_response(proto: ResponseHandler) -> None:
    """A request is about to go on ``proto``: the bytes that come next are its
    answer, read by a new parser (1 µs), as aiohttp's session reads each: what
    the last one kept past the end of a chunked answer in a later read (which
    ``_OneAnswer`` cannot see) is not the start of this one."""
    parser = proto._parser
    if isinstance(parser, _OneAnswer):
        parser._renew()
        parser.left = _FRESH


_HEAD_END = re.compile(rb"\n\r?\n")  # the empty line that ends a header block (CR optional)
_BLANKS = re.compile(rb"[\r\n]*")  # before a status line: skipped (RFC 9112 §2.2), as llhttp does
_NO_BODY = frozenset((204, 304))
# _OneAnswer.left, when not the body bytes still to come of an answer framed
# by its length (0: the answer is whole, what comes is junk):
_FRESH = -1  # an answer begins with the next byte
_PASS = -2  # a body framed otherwise (chunked, until close): every byte to the parser
_HEAD = -3  # within a header block: split where it ends


_LENGTH = re.compile(rb"^content-length[ \t]*:([^\r\n]*)\r?\n", re.IGNORECASE | re.MULTILINE)


def _one_length(block: bytes) -> bytes | None:
    """A header block whose Content-Length fields all give one length
    (``Content-Length: 4`` twice, or ``Content-Length: 4, 4``: a proxy's
    and a framework's), with one field instead, as RFC 9110 §8.6 allows
    and browsers read it; None for any other block (lengths that differ
    stay an error: two framings are how responses are smuggled)."""
    found = list(_LENGTH.finditer(block))
    values = [v.strip() for m in found for v in m.group(1).split(b",")]
    if len(values) < 2 or len(set(values)) != 1 or not values[0].isdigit():
        return None
    kept = [block[: found[0].start()], b"Content-Length: %s\r\n" % values[0]]
    kept += [block[a.end(): b.start()] for a, b in itertools.pairwise(found)]
    kept.append(block[found[-1].end():])
    return b"".join(kept)


class _OneAnswer:
    """aiohttp's response parser, fed no byte past the end of the answer to
    the request in flight (the pool sends one at a time, never pipelined).

    A server whose ``Content-Length`` is short of its body (a length counted
    in characters, not bytes), or that sends a body with a 204 or 304, puts
    bytes after the answer, mostly in the same read. The parser took them
    for the next answer's status line: when they were not one, it failed and
    aiohttp dropped the answer parsed with them; when they were a valid
    start, it kept them, and the next request's answer on the connection was
    read on after them (with their status). Browsers and curl keep the
    answer, cut at its length, and do not reuse the connection: so does
    this. An answer that begins a read goes to the parser whole (nearly all
    do: no copy, one call), and what it held past its end closes the
    connection; only when the parser fails on it is it read again, by a new
    parser, block by block. A chunked or close-delimited body is passed
    through as it is (bytes past a chunked one are seen only in the read
    that began it: the end of a chunked body cannot be found without
    parsing it again)."""

    __slots__ = ("_head", "_limits", "_most", "_parser", "_proto", "left")
    _parser: Any  # aiohttp's HttpResponseParser (its C one where built)

    def __init__(self, proto: ResponseHandler, limits: HeaderLimits) -> None:
        self._proto = proto
        self._limits = limits
        # a header block past the parser's bounds (a 16 KiB status line, 128
        # fields of 64 KiB): not held (it would refuse the block when whole)
        self._most = limits["max_line_size"] + limits["max_headers"] * limits["max_field_size"]
        self.left = _FRESH
        self._renew()  # its parser, installed as ``proto``'s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def feed_data(self, data: bytes) -> tuple[Any, bool, bytes]:
        left = self.left
        if left == _PASS or not data:  # b"": aiohttp resuming a paused inflate
            return self._parser.feed_data(data)  # type: ignore[no-any-return]
        if left >= 0:
            return self._body(data, ())
        if left == _HEAD:
            return self._blocks(data)
        try:
            got = self._parser.feed_data(data)
        except aiohttp.http_exceptions.HttpProcessingError:
            # Bytes past the answer, or a broken answer: read again with a new
            # parser (which raises the same for a broken one).
            self._renew()
            return self._blocks(data)
        self._read(data, got[0], got[1])
        return got  # type: ignore[no-any-return]

    def _renew(self) -> None:
        """A new parser, and no header block held: for a new answer, or in place
        of one that failed (a parser does not recover). The pool's limits, not
        aiohttp's defaults (a header field of 10,000 bytes would be refused);
        ``read_until_eof``: an answer with neither length nor chunking ends
        when the server closes."""
        self._proto.set_response_params(read_until_eof=True, **self._limits)
        self._parser, self._proto._parser = self._proto._parser, self  # type: ignore[assignment]
        # a header block read so far (its end may straddle reads): all of it, for
        # _one_length; a bytearray, so that a block trickled in costs no more than its size
        self._head = bytearray()

    def _read(self, data: bytes, messages: Any, upgraded: bool) -> None:
        """Where an answer that began this read and was parsed whole leaves ``left``."""
        if not messages:  # its header block goes on in the next read
            self.left, self._head = _HEAD, bytearray(data)
            return
        message, payload = messages[-1]
        code = message.code
        if code == 101 or upgraded:  # switched protocols: nothing after it is HTTP
            self._proto.force_close()
            self.left = 0
        elif 100 <= code < 200:  # 1xx only, and perhaps the start of the next block
            rest = _HEAD_END.split(data)[-1]
            self.left, self._head = (_HEAD, bytearray(rest)) if rest else (_FRESH, bytearray())
        elif code not in _NO_BODY and (
                (length := message.headers.get("Content-Length")) is None
                or "Transfer-Encoding" in message.headers):
            if not payload.is_eof():
                self.left = _PASS
            else:  # whole: a chunked body ends its read unless more came after it,
                # which the parser took for the next answer's start
                if not data.endswith((b"\n\n", b"\n\r\n")):
                    self._proto.force_close()
                self.left = 0
        else:  # framed by its length: the bytes of its body this read held
            end = 0
            for _ in messages:  # each answer's header block is whole in this read,
                # after the blank lines a client skips before a status line
                start = _BLANKS.match(data, end).end()  # type: ignore[union-attr]
                end = _HEAD_END.search(data, start).end()  # type: ignore[union-attr]
            left = (0 if code in _NO_BODY else int(length)) - (len(data) - end)
            if left < 0:  # bytes past the answer: the parser kept them as an answer's start
                self._proto.force_close()
            self.left = max(left, 0)

    def _blocks(self, data: bytes) -> tuple[Any, bool, bytes]:
        """Feed ``data`` header block by header block, then the body up to its length.

        A block cut across reads is held until it is whole and then given
        to a new parser (the old one may hold its start): it is read the
        same however the reads cut it (``_one_length`` sees all of it)."""
        messages: list[Any] = []
        while True:  # interim 1xx answers, then the final one
            head = self._head
            seen = head[-2:]  # an end straddling the reads
            m = _HEAD_END.search(seen + data if head else data)
            if m is None:
                self.left = _HEAD
                head += data
                if len(head) > self._most:  # the parser's bounds, which it has not seen
                    raise aiohttp.http_exceptions.LineTooLong("a header block", self._most)
                return messages, False, b""
            end = m.end() - len(seen)
            block = data[:end]
            if head:
                block = bytes(head) + block
                self._renew()
            try:
                got, upgraded, _ = self._parser.feed_data(block)
            except aiohttp.http_exceptions.HttpProcessingError:
                once = _one_length(block)
                if once is None:
                    raise
                self._renew()
                got, upgraded, _ = self._parser.feed_data(once)
            messages.extend(got)
            data = data[end:]
            if not got:  # blank lines before a status line, which the parser skips
                continue
            message = got[-1][0]
            code = message.code
            if code == 101 or upgraded:  # switched protocols: nothing after it is HTTP
                self._proto.force_close()
                self.left = 0
                return self._body(data, messages)
            if 100 <= code < 200:
                self.left = _FRESH
                if not data:
                    return messages, False, b""
                continue
            length = message.headers.get("Content-Length")
            if code in _NO_BODY:
                self.left = 0
            elif length is not None and "Transfer-Encoding" not in message.headers:
                self.left = int(length)  # the parser refused it unless all digits
            else:
                self.left = _PASS
                break
            return self._body(data, messages)
        if not data:
            return messages, False, b""
        got = self._parser.feed_data(data)
        return (*messages, *got[0]), got[1], got[2]

    def _body(self, data: bytes, messages: Any) -> tuple[Any, bool, bytes]:
        left = self.left
        if len(data) > left:  # past the answer: not the start of another (none was asked)
            self._proto.force_close()
            data = data[:left]
        self.left = left - len(data)
        if not data:
            return messages, False, b""
        got = self._parser.feed_data(data)
        return ((*messages, *got[0]), *got[1:]) if messages else got


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
