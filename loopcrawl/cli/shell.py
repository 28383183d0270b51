"""``loopcrawl shell URL``: a Python prompt with a fetched ``response``.

For writing selectors against a real page before putting them in a spider,
as ``scrapy shell`` does. One request at a time, like curl: robots.txt is
not consulted (a person at a prompt is not a crawler).
"""

from __future__ import annotations

import asyncio
import code
from typing import Any

from ..errors import ConfigError
from ..http import Request, Response
from ..net.fetcher import Fetcher
from ..settings import Settings
from ..urls import canonicalize

__all__ = ["fetch", "interact"]

_BANNER = """loopcrawl shell: {response!r}
  response   the page: .text .css() .xpath() .json() .follow() .submit() .headers
  fetch(url_or_request)   fetch another page into `response`
  Request, Item, Field    as in a spider; quit with Ctrl-D"""


async def _fetch(request: Request, settings: Settings) -> Response:
    async with Fetcher(settings) as fetcher:
        f = await fetcher.fetch(request.url, method=request.method, headers=request.headers,
                                body=request.body or None, cookies=request.cookies)
    return Response(f.url, f.status, f.headers, f.body, request)


def fetch(target: str | Request, settings: Settings | None = None) -> Response:
    """One request, redirects followed; raises FetchError or ConfigError."""
    request = Request(target) if isinstance(target, str) else target
    url = canonicalize(request.url)
    if url is None:
        raise ConfigError(f"not an http(s) URL: {request.url!r}")
    request.url = url
    return asyncio.run(_fetch(request, settings or Settings()))


def interact(response: Response, settings: Settings | None = None) -> None:
    """Run the interactive console until end of input (Ctrl-D)."""
    from .. import Field, Item

    namespace: dict[str, Any] = {"response": response, "Request": Request, "Item": Item,
                                 "Field": Field, "settings": settings}

    def fetch_into(target: str | Request) -> Response:
        r = fetch(target, settings)
        namespace["response"] = r
        return r

    namespace["fetch"] = fetch_into
    code.interact(banner=_BANNER.format(response=response), local=namespace, exitmsg="")
