"""A ``Request`` as a row of the ``requests`` table and back, and which state
(done or failed) a record leaves its request in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ... import errors
from ...errors import StateError
from ...http import Request
from ..base import callback_names

if TYPE_CHECKING:
    from ...http import FetchRecord

QUEUED, DONE, FAILED = 0, 1, 2  # requests.state
U64 = 1 << 64
_I63 = 1 << 63

SELECT = ("SELECT id, url, depth, referrer, method, priority, retries, fp, meta, spider, body "
          "FROM requests ")


def signed(fp: int) -> int:
    """A 64-bit fingerprint as SQLite's signed INTEGER."""
    return fp - U64 if fp >= _I63 else fp


def spider_fields(r: Request) -> str | None:
    """A spider's fields of ``r`` as JSON (None for a plain crawl's request):
    callbacks by name, since a function cannot be written to disk."""
    if (r.callback is None and r.errback is None and not r.cb_kwargs and not r.headers
            and not r.cookies and r.auth is None and not r.dont_filter):
        return None
    d: dict[str, Any] = callback_names(r, "kept in a state file")
    for key in ("cb_kwargs", "headers", "cookies", "auth", "dont_filter"):
        v = getattr(r, key)
        if v:
            d[key] = v
    try:
        return orjson.dumps(d).decode()
    except TypeError as e:
        raise StateError(f"the request for {r.url} cannot be kept in a state file "
                         f"(cb_kwargs must be JSON values): {e}") from None


def row_of(rid: int, r: Request, state: int = QUEUED, error: str | None = None
           ) -> tuple[Any, ...]:
    """The ``requests`` row of ``r`` (the INSERT's values, in column order)."""
    try:
        meta = orjson.dumps(r.meta).decode() if r.meta else None
    except TypeError as e:
        raise StateError(f"the request for {r.url} cannot be kept in a state file "
                         f"(meta must be JSON values): {e}") from None
    return (rid, signed(r.fp), r.url, r.depth, r.referrer, r.method, r.priority, r.retries,
            meta, state, error, spider_fields(r), r.body or None)


def request_of(row: tuple[Any, ...]) -> Request:
    """A row read with ``SELECT`` back as a Request (the inverse of ``row_of``)."""
    _, url, depth, referrer, method, prio, retries, fp, meta, spider, body = row
    r = Request(url, depth, referrer, method, prio, retries, fp % U64,
                orjson.loads(meta) if meta else None)
    if spider is not None:
        for key, v in orjson.loads(spider).items():
            setattr(r, key, tuple(v) if key == "auth" else v)
    if body:
        r.body = bytes(body)
    return r


def state_of(record: FetchRecord) -> int:
    """DONE, or FAILED (which ``--recrawl-failed`` queues again)."""
    e = record.error
    if e is None:
        return DONE
    return DONE if e in errors.POLICY else FAILED  # policy is no failure: not fetched again
