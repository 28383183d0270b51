"""One Settings field's metadata and checks (``settings.settings_fields()``).

Kept apart from ``settings.py`` so that file reads as the list of settings.
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .http import check_header
from .urls import canonicalize

AUTO_OPTION = "auto"  # the option's name is the field's: per_host -> --per-host


def meta(help: str, *, option: str | None = AUTO_OPTION, short: str | None = None,
         metavar: str | None = None, min: float | None = None, max: float | None = None,
         above: bool = False, unit: str | None = None,
         choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """A field's metadata, read back by ``settings_fields``: see SettingField."""
    return dict(help=help, option=option, short=short, metavar=metavar, min=min, max=max,
                above=above, unit=unit, choices=choices)


def setting(default: Any, help: str, **kwargs: Any) -> Any:
    """A Settings field of an immutable ``default`` with its metadata (``meta``)."""
    return field(default=default, metadata=meta(help, **kwargs))


def _num(v: float) -> str:
    r = repr(v)
    return shorten(r[:-2] if r.endswith(".0") else r)


def shorten(text: str) -> str:
    """A value as an error message quotes it: a hostile one kept to one short line."""
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


@dataclass(frozen=True, slots=True)
class SettingField:
    """One Settings field as the command line and the docs see it.

    How the command line builds an option from it: ``option`` (None: no
    option, the field is set otherwise) with ``short`` and ``metavar``;
    ``type`` is the value's type (a tuple field is a repeatable option, a
    bool field a flag that sets ``not default``: ``--ignore-robots`` sets
    ``obey_robots`` False); ``optional``: None is a value (no limit).
    Declare the option as ``str`` and build the value with ``parse(text)``:
    click's int/float types print a multi-line usage error, and its float
    accepts nan and inf. On ``ConfigError`` print ``e.named(option)``.
    """

    name: str
    type: type  # int, float, bool, str, tuple or dict
    optional: bool
    default: Any
    help: str
    option: str | None  # "--per-host"
    short: str | None  # "-q"
    metavar: str | None
    min: float | None
    max: float | None
    above: bool  # min itself is refused: "more than 0"
    unit: str | None  # "seconds", "bytes", ...
    choices: tuple[str, ...]

    def check(self, value: Any) -> Any:
        """``value`` as the field keeps it (a list becomes a tuple, an int a
        float for a float field); ConfigError with ``field`` set if it cannot be."""
        try:
            return self._check(value)
        except _Whole as e:  # a message that says it all ("not an http(s) URL: 'x'")
            error = ConfigError(str(e))
            error.field = self.name
            raise error from None
        except ValueError as e:
            raise ConfigError(str(e), field=self.name) from None

    def _check(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        t = self.type
        if t in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"must be a {'whole ' if t is int else ''}number, "
                                 f"not {shorten(repr(value))}")
            if isinstance(value, float) and not math.isfinite(value):  # an int always is
                raise ValueError(f"must be a finite number, not {_num(value)}")
            if t is int and not isinstance(value, int):
                raise ValueError(f"must be a whole number, not {_num(value)}")
            if self.min is not None and (value <= self.min if self.above else value < self.min):
                raise ValueError(f"must be {'more than' if self.above else 'at least'} "
                                 f"{_num(self.min)}, not {_num(value)}")
            if self.max is not None and value > self.max:
                raise ValueError(f"must be at most {_num(self.max)}, not {_num(value)}")
            return float(value) if t is float and type(value) is not float else value
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, not {shorten(repr(value))}")
            return value
        if t is str:
            if not isinstance(value, str):
                raise ValueError(f"must be a string, not {shorten(repr(value))}")
            checked = _CHECKS.get(self.name, _same)(value)
            if self.choices and checked not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}, not {shorten(repr(value))}")
            return checked
        if t is tuple:
            if isinstance(value, str):
                raise ValueError(f"must be a list of strings, not one string (write "
                                 f"({shorten(repr(value))},) for a single one)")
            if not isinstance(value, list | tuple):
                raise ValueError(f"must be a list of strings, not {shorten(repr(value))}")
            if not all(isinstance(x, str) for x in value):
                raise ValueError(f"must be a list of strings, not {shorten(repr(value))}")
            return _CHECKS.get(self.name, tuple)(value)
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError(f"must be a mapping of strings to strings, not {shorten(repr(value))}")
        return _CHECKS.get(self.name, _same)(value)

    def parse(self, text: str) -> Any:
        """The value written ``text`` (an option's or ``-s``'s), checked:
        numbers, true/false (yes/no, on/off, 1/0), ``none`` for optional
        fields, comma-separated lists, ``user:password``, a JSON object."""
        try:
            value = self._parse(text)
        except ValueError as e:
            raise ConfigError(str(e), field=self.name) from None
        return self.check(value)

    def _parse(self, text: str) -> Any:
        import json

        raw = text.strip()
        if self.optional and raw.lower() in ("", "none", "null"):
            return None
        if self.type in (int, float):
            try:
                return int(raw) if self.type is int else float(raw)
            except ValueError:
                pass
            try:  # "nan", "1.5", "1e3": check() says what is wrong, or takes 1000
                number = float(raw)
            except ValueError:
                raise ValueError(f"must be a {'whole ' if self.type is int else ''}number, "
                                 f"not {shorten(repr(text))}") from None
            return int(number) if number.is_integer() else number
        if self.type is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(f"must be true or false, not {shorten(repr(text))}")
            return raw.lower() in _TRUE
        if self.type is str:
            return text
        if self.type is tuple:
            if self.name == "http_auth":
                user, colon, password = text.partition(":")
                if not colon:
                    raise ValueError("must be user:password")
                return user, password
            return tuple(x.strip() for x in text.split(",") if x.strip())
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, not {shorten(repr(text))}")
        return {str(k): str(v) for k, v in value.items()}


_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))


class _Whole(ValueError):
    """A reason that reads alone, not after the field's name."""


def _same(value: Any) -> Any:
    return value


def _seeds(seeds: tuple[str, ...]) -> tuple[str, ...]:
    canon = []
    for s in seeds:
        c = canonicalize(s)
        if c is None:
            raise _Whole(f"not an http(s) URL: {s!r}")
        canon.append(c)
    return tuple(canon)


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    for k, v in headers.items():
        try:
            check_header(k, v)
        except ValueError:
            raise ValueError(f"holds {k!r}: {v!r}, with a line break or a control "
                             "character") from None
    return dict(headers)


def _user_agent(value: str) -> str:
    _headers({"User-Agent": value})
    return value


def _auth(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(value) != 2:
        raise ValueError("must be (user, password)")
    return tuple(value)


def _proxy(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// URL, not {shorten(repr(value))}")
    return value


def _ca_bundle(value: str) -> str:
    """A file of CA certificates that loads (checked once here, so a crawl
    never starts to fail every HTTPS request over a typo)."""
    if not value:
        raise ValueError("must name a PEM file of CA certificates")
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        # The whole path, quoted (repr keeps it on one line): the user must be
        # able to see which file it was, however deep.
        raise ValueError(f"must be a PEM file of CA certificates; cannot load {value!r}: "
                         f"{e.strerror or e if isinstance(e, OSError) else e}") from None
    return value


def _regexes(value: tuple[str, ...]) -> tuple[str, ...]:
    for p in value:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"holds {p!r}, not a regular expression: {e}") from None
    return tuple(value)


_CHECKS: dict[str, Any] = {"seeds": _seeds, "headers": _headers, "user_agent": _user_agent,
                           "http_auth": _auth, "proxy": _proxy, "allow": _regexes,
                           "deny": _regexes, "ca_bundle": _ca_bundle, "log_level": str.upper}


# Scrapy's settings and what answers them here ("use delay"), for users who
# bring a Scrapy spider's custom_settings.
SCRAPY_NAMES: dict[str, str] = {
    "DOWNLOAD_DELAY": "delay",
    "CONCURRENT_REQUESTS": "concurrency",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "per_host",
    "CONCURRENT_REQUESTS_PER_IP": "per_host",
    "DEPTH_LIMIT": "depth",
    "ROBOTSTXT_OBEY": "obey_robots",
    "USER_AGENT": "user_agent",
    "DOWNLOAD_TIMEOUT": "timeout",
    "RETRY_TIMES": "retries",
    "RETRY_ENABLED": "retries (0 turns retries off)",
    "CLOSESPIDER_PAGECOUNT": "max_pages",
    "DEFAULT_REQUEST_HEADERS": "headers",
    "COOKIES_ENABLED": "cookies",
    "REDIRECT_MAX_TIMES": "max_redirects",
    "REDIRECT_ENABLED": "max_redirects (0 follows none)",
    "DOWNLOAD_MAXSIZE": "max_response_size",
    "DOWNLOAD_WARNSIZE": "max_response_size (there is no warning size)",
    "LOG_LEVEL": "log_level",
    "LOG_FILE": "log_file",
    "ITEM_PIPELINES": "set the spider's pipelines attribute (a list, run in order)",
    "FEEDS": "write items with -o FILE (the format from its extension)",
    "FEED_URI": "write items with -o FILE (the format from its extension)",
    "FEED_FORMAT": "use --format",
    "JOBDIR": "use --state FILE (the crawl resumes from it)",
    "AUTOTHROTTLE_ENABLED": "not supported: set delay and per_host",
    "HTTPPROXY_ENABLED": "use proxy",
}
