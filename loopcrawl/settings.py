"""Typed, frozen crawl settings, validated when built, with a record per field.

One object carries every limit; modules read their values from it and from
nowhere else, so a default lives in exactly one place: the field here. Each
field also carries its help text, command-line option, bounds and unit
(``settings_fields()``): the command line builds its options from them and
``docs/settings.md`` is generated from them (``python -m loopcrawl.settings``).

Every value is checked the same way wherever it comes from (code, a spider's
``custom_settings``, ``-s key=value``, an option): a wrong type, NaN,
infinity, or a number outside the field's bounds raises ``ConfigError`` whose
``field`` names the field and whose ``reason`` says what is wrong, so each
caller names the value as its user typed it (``e.named("--per-host")``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._setting_field import AUTO_OPTION, SCRAPY_NAMES, SettingField, meta, setting, shorten
from .errors import ConfigError

__all__ = ["DEFAULT_USER_AGENT", "LOG_LEVELS", "SCRAPY_NAMES", "SettingField", "Settings",
           "apply_settings", "check_key", "parse_setting", "setting_field", "settings_fields"]

DEFAULT_USER_AGENT = "loopcrawl/0.1 (+https://github.com/loopcrawl/loopcrawl)"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DAY = 86_400.0  # seconds


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a crawl is configured by. Times in seconds, sizes in bytes."""

    seeds: tuple[str, ...] = setting((), "The URLs the crawl starts from (the command's arguments).",
                                option=None, metavar="URL")
    output: str | None = setting(None, "Where the page records go (`-o`).", option=None)
    # Concurrency and politeness.
    concurrency: int = setting(64, "Requests in flight, all hosts together.",
                          min=1, max=10_000, unit="requests")
    workers: int = setting(1, "Worker processes, each an event loop with its coroutines: the "
                           "fetching and parsing of pages spread over cores, politeness and "
                           "limits kept for the whole crawl (`auto`: one per usable core).",
                           min=1, max=256, unit="processes")
    per_host: int = setting(8, "Requests in flight to one host (Scrapy's default too).",
                       min=1, max=10_000, unit="requests")
    delay: float = setting(0.0, "Seconds between two request starts on one host.",
                      min=0, max=_DAY, unit="seconds")
    obey_robots: bool = setting(True, "Obey robots.txt (the flag turns it off).",
                           option="--ignore-robots")
    user_agent: str = setting(DEFAULT_USER_AGENT, "The User-Agent header of every request.")
    # Sessions. ``http_auth`` goes to ``http_auth_hosts`` only (``host[:port]``;
    # by default the hosts of the seeds and of a spider's start requests),
    # never to hosts a crawl wanders to.
    headers: dict[str, str] = field(default_factory=dict, metadata=meta(
        "A header for every request (repeatable).", option="--header", short="-H",
        metavar="'NAME: VALUE'"))
    cookies: bool = setting(True, "Keep the cookies sites set, one jar per crawl (the flag: "
                       "keep none).", option="--no-cookies")
    http_auth: tuple[str, str] | None = setting(None, "HTTP basic auth, sent to the seeds' hosts "
                                           "only.", option="--auth", metavar="USER:PASSWORD")
    http_auth_hosts: tuple[str, ...] = setting((), "The hosts (`host[:port]`) basic auth is sent "
                                          "to (default: the seeds' hosts).", option=None)
    proxy: str | None = setting(None, "Send every request through this HTTP proxy "
                           "(http://host:port).", metavar="URL")
    # TLS: certificates are verified against the system's CA store
    # (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` point it elsewhere), or against
    # ``ca_bundle`` instead; ``verify_tls=False`` skips verification (warned).
    ca_bundle: str | None = setting(None, "Trust the CA certificates in this PEM file (instead "
                               "of the system's) to verify HTTPS sites: a private CA.",
                               metavar="FILE")
    verify_tls: bool = setting(True, "Verify TLS certificates (the flag: do not verify them, "
                          "with a warning; for a test server only).", option="--insecure")
    # GETs go over loopcrawl's own keep-alive pool on aiohttp's protocol
    # (``wire.py``); False sends every request through ``aiohttp.ClientSession``,
    # as other methods, per-request cookies and proxied requests always go.
    http_pool: bool = setting(True, "Send GETs over loopcrawl's keep-alive pool (the flag: "
                         "through aiohttp's ClientSession, a little slower).",
                         option="--http-session")
    # Limits.
    depth: int | None = setting(None, "Follow links this many hops from a seed (default: no "
                           "limit; 0: the seeds only).", min=0, max=1_000_000, unit="hops")
    max_pages: int | None = setting(None, "Stop after this many pages (default: no limit).",
                               min=1, max=10**12, unit="pages")
    scope: str = setting("host", "Which links to follow: the seeds' hosts, their domains (with "
                    "subdomains), or any.", choices=("host", "domain", "any"))
    allow: tuple[str, ...] = setting((), "Follow only URLs matching this regular expression "
                                "(repeatable).", metavar="REGEX")
    deny: tuple[str, ...] = setting((), "Never follow URLs matching this regular expression "
                               "(repeatable).", metavar="REGEX")
    max_links_per_page: int = setting(10_000, "Links to take from one page.",
                                 min=1, max=10_000_000, unit="links")
    # Trap defences (see docs/hardening.md).
    max_url_length: int = setting(2048, "Longer links are not followed.",
                             min=16, max=1_000_000, unit="characters")
    max_repeated_segments: int = setting(3, "Links repeating one path segment more often "
                                    "(/a/a/a/a/) are traps.", min=1, max=1000, unit="segments")
    max_query_variants: int | None = setting(10_000, "Distinct query strings fetched on one "
                                        "path; more are traps.", min=1, max=10**9,
                                        unit="queries")
    max_similar_pages: int | None = setting(50, "Links followed, per host and first path "
                                       "segment, from pages that barely differ from the "
                                       "page linking to them (a calendar, pagination past "
                                       "the end, a session id, a soft 404); the others are "
                                       "traps.", min=1, max=10**9, unit="links")
    max_pages_per_host: int | None = setting(None, "Pages fetched from one host (default: no "
                                        "limit).", min=1, max=10**12, unit="pages")
    max_queued: int | None = setting(1_000_000, "Requests waiting in the crawl's queue in memory "
                                "(~400 bytes each); links past it are not followed "
                                "(`queue_full`). A crawl with `--state` or Redis queues "
                                "outside the process, without this cap.", min=1, max=10**12, unit="requests")
    follow_sitemaps: bool = setting(False, "Also seed from the hosts' sitemaps (robots.txt "
                               "Sitemap: lines, else /sitemap.xml).", option="--sitemaps")
    # Timeouts (aiohttp ClientTimeout): total per request, TCP connect, and
    # the longest silence between two reads of the body.
    timeout: float = setting(30.0, "Seconds for a whole request, redirects included.",
                        min=0, above=True, max=_DAY, unit="seconds")
    connect_timeout: float = setting(10.0, "Seconds to open a connection (DNS, TCP, TLS).",
                                min=0, above=True, max=_DAY, unit="seconds")
    read_timeout: float = setting(15.0, "Longest silence, in seconds, between two reads of a body.",
                             min=0, above=True, max=_DAY, unit="seconds")
    max_response_size: int = setting(10 * 1024 * 1024, "Bytes of body (decompressed) to accept "
                                "from one response.", min=1, max=4 * 1024**3, unit="bytes")
    max_redirects: int = setting(10, "Redirect hops to follow for one request.",
                            min=0, max=100, unit="hops")
    retries: int = setting(2, "Extra attempts after a timeout, connection error, 5xx or 429.",
                      min=0, max=100, unit="attempts")
    retry_backoff: float = setting(0.5, "First back-off before a retry; doubles each attempt, "
                              "with jitter.", min=0, max=_DAY, unit="seconds")
    # robots.txt unreachable or 5xx: the host is disallowed this long, then
    # asked again (Google's documented behaviour for 5xx robots.txt).
    robots_error_retry: float = setting(30.0, "Seconds a host whose robots.txt failed is treated "
                                   "as disallowed before it is asked again.",
                                   min=0, max=_DAY, unit="seconds")
    log_level: str | None = setting(None, "Show log messages of this level and above, on "
                                    "standard error (default: INFO for a spider's "
                                    "self.logger, as Scrapy shows it, WARNING for loopcrawl's "
                                    "own; ERROR with --quiet).", choices=LOG_LEVELS)
    log_file: str | None = setting(None, "Write the log to this file instead of standard "
                                   "error (appended to).", metavar="FILE")
    quiet: bool = setting(False, "No progress display, no summary, and only errors in the log.",
                     short="-q")
    extra: dict[str, str] = field(default_factory=dict, metadata=meta(
        "Free values for the user's own code.", option=None))

    def __post_init__(self) -> None:
        for f in settings_fields():
            value = getattr(self, f.name)
            checked = f.check(value)
            if checked is not value:
                object.__setattr__(self, f.name, checked)

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@functools.cache
def settings_fields() -> tuple[SettingField, ...]:
    """Every Settings field with its metadata, in declaration order."""
    hints = typing.get_type_hints(Settings)
    out = []
    for f in dataclasses.fields(Settings):
        hint, args = hints[f.name], typing.get_args(hints[f.name])
        optional = type(None) in args
        if optional:
            hint = next(a for a in args if a is not type(None))
        m = f.metadata
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        option = "--" + f.name.replace("_", "-") if m["option"] == AUTO_OPTION else m["option"]
        out.append(SettingField(
            name=f.name, type=typing.get_origin(hint) or hint, optional=optional,
            default=default, help=m["help"], option=option, short=m["short"],
            metavar=m["metavar"], min=m["min"], max=m["max"], above=m["above"], unit=m["unit"],
            choices=m["choices"]))
    return tuple(out)


def setting_field(name: str) -> SettingField | None:
    """The field called ``name``, or None."""
    return _BY_NAME().get(name)


@functools.cache
def _BY_NAME() -> dict[str, SettingField]:
    return {f.name: f for f in settings_fields()}


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (``-s``) as a Settings field's name and checked value.
    Errors name it as typed: ``-s per_host=0: must be at least 1, not 0``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"-s {text!r}: expected KEY=VALUE")
    name = check_key(key, f"-s {key}")
    try:
        return name, _BY_NAME()[name].parse(raw)
    except ConfigError as e:
        raise ConfigError(e.named(f"-s {shorten(text)}:")) from None


def check_key(key: str, label: str) -> str:
    """The field ``key`` names (a ``-`` read as ``_``); a ConfigError saying
    ``label``'s loopcrawl name if it is a Scrapy setting, else the valid keys."""
    name = key.replace("-", "_")
    if name in _BY_NAME() and name != "extra":
        return name
    hint = SCRAPY_NAMES.get(key.upper())
    if hint is None and name.lower() in _BY_NAME():
        hint = name.lower()
    if hint is not None:
        raise ConfigError(f"{label}: {'use ' + hint if hint in _BY_NAME() else hint}")
    names = sorted(f.name for f in settings_fields() if f.name != "extra")
    close = difflib.get_close_matches(name.lower(), names, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(f"{label}: unknown setting{guess}; the settings are: {', '.join(names)}")


def apply_settings(base: Settings, values: Mapping[str, Any], label: str) -> Settings:
    """``base`` with ``values`` (a spider's ``custom_settings``, say) on top,
    each checked on its own so an error names it as ``label`` does:
    ``custom_settings['per_host'] must be at least 1, not 0``
    (``label="custom_settings[{key!r}]"``)."""
    changes = {}
    for key, value in values.items():
        where = label.format(key=key)
        if not isinstance(key, str):
            raise ConfigError(f"{where}: a setting's name is a string")
        name = check_key(key, where)
        try:
            changes[name] = _BY_NAME()[name].check(value)
        except ConfigError as e:
            raise ConfigError(e.named(where)) from None
    return base.replace(**changes) if changes else base


