"""HTTP basic auth for a crawl: which requests carry it, and the header."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from ..http import Request
from ..settings import Settings
from ..urls import host_of

__all__ = ["BasicAuth", "basic_auth"]


def basic_auth(user: str, password: str) -> str:
    """The Authorization header of HTTP basic auth (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class BasicAuth:
    """The crawl's ``http_auth`` goes to ``http_auth_hosts`` only (by default the
    hosts the crawl starts on), never to hosts it wanders to; a spider's
    Request may carry its own ``auth``, which wins."""

    def __init__(self, settings: Settings, start_hosts: Iterable[str]) -> None:
        self._value = basic_auth(*settings.http_auth) if settings.http_auth else None
        self._hosts = frozenset(settings.http_auth_hosts or start_hosts)

    def headers(self, req: Request) -> Mapping[str, str] | None:
        """``req``'s headers, with an Authorization header if it is to carry one."""
        if req.auth is not None:
            value = basic_auth(*req.auth)
        elif self._value is not None and host_of(req.url) in self._hosts:
            value = self._value
        else:
            return req.headers
        return {**(req.headers or {}), "Authorization": value}
