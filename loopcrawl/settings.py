"""Typed, frozen crawl settings, validated when built.

One object carries every limit; modules read their values from it and from
nowhere else, so a default lives in exactly one place: here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import ConfigError
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
    # Limits.
    depth: int | None = None  # None: unlimited
    max_pages: int | None = None  # records to produce, then stop
    scope: str = "host"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    max_links_per_page: int = 10_000
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
    robots_error_retry: float = 60.0
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
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, not {value}")
        for name in ("delay", "retries", "max_redirects", "retry_backoff"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.depth is not None and self.depth < 0:
            raise ConfigError("depth must not be negative")
        if self.max_pages is not None and self.max_pages <= 0:
            raise ConfigError("max-pages must be positive")

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
