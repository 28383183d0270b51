"""A ``Request`` as the bytes queued in Redis, and back.

A link's request (a GET with no spider fields, nearly every request) is the
JSON array ``[url, depth, referrer]``: ~90 bytes on the test site. Anything
else adds a fourth element, an object with short keys for the fields that
differ from their defaults. The fingerprint is not stored: ``Request``
computes it from the URL, method and body. Callbacks are stored by name (a
function cannot cross machines); a worker's spider turns the name back into
its method, as with ``--state``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...errors import StateError
from ...http import Request
from ..base import callback_names

# Field -> key in the extras object; the body is latin-1 text (bytes as is).
_EXTRAS = (("method", "m"), ("priority", "p"), ("retries", "r"), ("meta", "meta"),
           ("cb_kwargs", "kw"), ("headers", "h"), ("cookies", "c"), ("auth", "a"),
           ("dont_filter", "df"))


def encode(r: Request) -> bytes:
    """The bytes of ``r`` in the queue; ``StateError`` if a field cannot be
    stored (a callback that is not a spider method, cb_kwargs that are not JSON)."""
    if (r.method == "GET" and not r.retries and r.meta is None and r.callback is None
            and r.errback is None and not r.body and not r.priority and not r.cb_kwargs
            and not r.headers and not r.cookies and r.auth is None and not r.dont_filter):
        return orjson.dumps((r.url, r.depth, r.referrer))
    x: dict[str, Any] = {}
    for name, key in _EXTRAS:
        v = getattr(r, name)
        if v and v != "GET":
            x[key] = v
    if r.body:
        x["b"] = r.body.decode("latin-1")
    names = callback_names(r, "queued in Redis")
    if names:
        if "callback" in names:
            x["cb"] = names["callback"]
        if "errback" in names:
            x["eb"] = names["errback"]
    try:
        return orjson.dumps((r.url, r.depth, r.referrer, x))
    except TypeError as e:
        raise StateError(f"the request for {r.url} cannot be queued in Redis "
                         f"(meta and cb_kwargs must be JSON values): {e}") from None


def decode(data: bytes) -> Request:
    """The ``Request`` that ``encode`` wrote."""
    v = orjson.loads(data)
    if len(v) == 3:
        return Request(v[0], v[1], v[2])
    x = v[3]
    body = x.get("b")
    r = Request(v[0], v[1], v[2], x.get("m", "GET"), x.get("p", 0), x.get("r", 0), 0,
                x.get("meta"), x.get("cb"), x.get("eb"), x.get("kw"), x.get("h"),
                body.encode("latin-1") if body else b"", x.get("c"),
                tuple(x["a"]) if "a" in x else None, x.get("df", False))
    return r
