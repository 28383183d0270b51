"""The test site's URL layout, shared by its pages (``site.py``) and its
ground truth (``truth.py``)."""

from __future__ import annotations

import re
from typing import Any

OTHER_HOST = "127.0.0.2"
_HOST = "\x01"  # placeholder for the request's host in cached page templates
_OTHER = "\x02"  # placeholder for the other host (127.0.0.2 on the same port)
_ITEM_RE = re.compile(r"/cat(\d{1,2})/item(\d{1,9})\.html")
_TAG_RE = re.compile(r"name=t(\d{1,2})(&page=2)?")
CATEGORIES = 20


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as servers apply it to a raw request path."""
    out: list[str] = []
    segs = path.split("/")
    for n, seg in enumerate(segs[1:], 1):
        last = n == len(segs) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _hosts(host: str) -> tuple[str, str]:
    """(host, other host): the other host is 127.0.0.2 on the same port as ``host``."""
    host = host or "127.0.0.1"
    _, sep, port = host.rpartition(":")
    if sep and port.isdigit() and not host.endswith("]"):
        return host, f"{OTHER_HOST}:{port}"
    return host, OTHER_HOST


# A link target. ("h",) home, ("p", j) item, ("t", k, page) tag page, ("g", j) redirect
# to item j, ("x", k) private, ("m", k) missing, ("e", k) ext page on the other host,
# ("s",) the page itself, ("o", url) off-site; None for mailto:/tel:/javascript:.
Target = tuple[Any, ...] | None
Link = tuple[str, str, Target]  # (href exactly as written in the HTML, anchor text, target)
