"""Typed, frozen crawl settings, validated when built.

One object carries every limit; modules read their values from it and from
nowhere else, so a default lives in exactly one place: here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import ConfigError
from .http import check_header
from .urls import canonicalize

DEFAULT_USER_AGENT = "loopcrawl/0.1 (+https://github.com/loopcrawl/loopcrawl)"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a crawl is configured by. Times in seconds, sizes in bytes."""

    seeds: tuple[str, ...] = ()
    output: str | None = None
    # Concurrency and politeness.
    concurrency: int = 64  # requests in flight, all hosts together
    per_host: int = 8  # requests in flight to one host (Scrapy's default too)
    delay: float = 0.0  # between two request starts on one host
    obey_robots: bool = True
    user_agent: str = DEFAULT_USER_AGENT
    # Sessions. ``headers`` go with every request; one cookie jar per crawl
    # keeps what sites set (``cookies=False``: none kept). ``http_auth``
    # (user, password) is sent to ``http_auth_hosts`` only (``host[:port]``;
    # by default the hosts of the seeds and of a spider's start requests),
    # never to hosts a crawl wanders to. ``proxy``: an http:// forward proxy.
    headers: dict[str, str] = field(default_factory=dict)
    cookies: bool = True
    http_auth: tuple[str, str] | None = None
    http_auth_hosts: tuple[str, ...] = ()
    proxy: str | None = None
    # GETs go over loopcrawl's own keep-alive pool on aiohttp's protocol
    # (``wire.py``, ~2.5x fewer instructions a request); False sends every
    # request through ``aiohttp.ClientSession``, as other methods, per-request
    # cookies and proxied requests always go.
    http_pool: bool = True
    # Limits.
    depth: int | None = None  # None: unlimited
    max_pages: int | None = None  # records to produce, then stop
    scope: str = "host"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    max_links_per_page: int = 10_000
    # Trap defences (see docs/hardening.md). Links longer than this, or whose
    # path repeats one segment more than max_repeated_segments times
    # (/a/a/a/a/...), are not followed; a path fetched with more than
    # max_query_variants distinct query strings (calendars, session ids,
    # ever-growing queries), or a host past max_pages_per_host pages, gets a
    # "trap" record instead of a fetch.
    max_url_length: int = 2048
    max_repeated_segments: int = 3
    max_query_variants: int | None = 1000
    max_pages_per_host: int | None = None
    follow_sitemaps: bool = False  # seed from robots.txt Sitemap: lines (or /sitemap.xml)
    # Timeouts (aiohttp ClientTimeout): total per request, TCP connect, and
    # the longest silence between two reads of the body.
    timeout: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    max_response_size: int = 10 * 1024 * 1024
    max_redirects: int = 10
    retries: int = 2  # extra attempts after a timeout, connection error, 5xx, 429
    retry_backoff: float = 0.5  # first back-off; doubles each attempt, with jitter
    # robots.txt unreachable or 5xx: treat the host as disallowed this long,
    # then ask again (Google's documented behaviour for 5xx robots.txt).
    robots_error_retry: float = 30.0
    quiet: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        canon = []
        for s in self.seeds:
            c = canonicalize(s)
            if c is None:
                raise ConfigError(f"not an http(s) URL: {s!r}")
            canon.append(c)
        object.__setattr__(self, "seeds", tuple(canon))
        positive = {
            "concurrency": self.concurrency,
            "per_host": self.per_host,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "max_response_size": self.max_response_size,
            "max_links_per_page": self.max_links_per_page,
            "max_url_length": self.max_url_length,
            "max_repeated_segments": self.max_repeated_segments,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, not {value}")
        for name in ("delay", "retries", "max_redirects", "retry_backoff"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        for k, v in {**self.headers, "User-Agent": self.user_agent}.items():
            try:
                check_header(k, v)
            except ValueError:
                raise ConfigError(f"bad header {k!r}: {v!r} (a line break or a control "
                                  "character)") from None
        if self.http_auth is not None and (
                len(self.http_auth) != 2 or not all(isinstance(x, str) for x in self.http_auth)):
            raise ConfigError("http_auth must be (user, password)")
        if self.proxy is not None and not self.proxy.startswith(("http://", "https://")):
            raise ConfigError(f"proxy must be an http:// URL, not {self.proxy!r}")
        if self.depth is not None and self.depth < 0:
            raise ConfigError("depth must not be negative")
        for name in ("max_pages", "max_query_variants", "max_pages_per_host"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (``loopcrawl run -s``) as a Settings field and a typed value.

    Types come from the field: numbers, booleans (true/false, yes/no, 1/0),
    ``none`` for optional fields, comma-separated lists for tuples,
    ``user:password`` for ``http_auth``, a JSON object for ``headers``.
    Raises ConfigError naming the problem.
    """
    import json
    import typing

    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    hints = typing.get_type_hints(Settings)
    if not sep or key not in hints or key == "extra":
        known = ", ".join(sorted(k for k in hints if k != "extra"))
        raise ConfigError(f"-s {text!r}: expected KEY=VALUE with KEY one of: {known}")
    hint = hints[key]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if raw.strip().lower() in ("", "none", "null"):
            return key, None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint) or hint
    try:
        if origin is bool:
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return key, low in _TRUE
        if origin in (int, float, str):
            return key, origin(raw.strip() if origin is not str else raw)
        if origin is tuple:
            if key == "http_auth":
                user, colon, password = raw.partition(":")
                if not colon:
                    raise ValueError("expected user:password")
                return key, (user, password)
            return key, tuple(x.strip() for x in raw.split(",") if x.strip())
        if origin is dict:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return key, {str(k): str(v) for k, v in value.items()}
    except ValueError as e:
        raise ConfigError(f"-s {text!r}: {e}") from None
    raise ConfigError(f"-s {key}: cannot be set from the command line")
