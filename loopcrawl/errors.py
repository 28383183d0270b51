"""The one exception tree of loopcrawl.

    LoopcrawlError
    ├── ConfigError        bad settings, seed URL or output path: the CLI exits 2
    ├── StateError         a --state file that is corrupt, foreign or in use
    ├── OutputError        the output cannot be written (disk full): the crawl stops
    └── FetchError         one URL failed; ``kind`` names the failure for the output
        ├── TooLarge           body (decompressed) above the size cap
        ├── RedirectError      too many hops, a loop, or a refused target
        └── (others are built from aiohttp errors in ``fetcher.classify``)

Errors from aiohttp and sqlite3 are wrapped where they enter, so callers only
ever catch these.
"""

from __future__ import annotations

# Failure kinds as they appear in the output's ``error`` field and the summary.
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
TOO_LARGE = "too_large"
HTTP_STATUS = "http_status"
ROBOTS_DENIED = "robots_denied"
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
REDIRECT_REFUSED = "redirect_refused"
INVALID_URL = "invalid_url"
DECODE_ERROR = "decode_error"
TRAP = "trap"
INVALID_SITEMAP = "invalid_sitemap"
# Spiders: a callback (or errback) raised; a pipeline raised (not DropItem).
CALLBACK_ERROR = "callback_error"
PIPELINE_ERROR = "pipeline_error"


class LoopcrawlError(Exception):
    """Base of every error loopcrawl raises on purpose."""


class ConfigError(LoopcrawlError):
    """A setting, seed URL or path the user gave cannot work.

    ``field``: the Settings field at fault (None if none is), with ``reason``
    saying what is wrong with its value ("must be at least 1, not 0"); the
    message is then "per_host must be ...". Callers that know how the user
    wrote the value print ``e.named("--per-host")`` instead.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field} {message}" if field else message)

    def named(self, label: str) -> str:
        """The message with the field called ``label`` (``--per-host``,
        ``-s per_host=0:``, ``custom_settings['per_host']``)."""
        return f"{label} {self.reason}" if self.field else f"{label} {self}"


class StateError(LoopcrawlError):
    """The persistent crawl state cannot be used as it is."""


class OutputError(LoopcrawlError):
    """The output file cannot be written (disk full, file size limit, I/O error).

    The crawl stops; with ``--state`` it resumes from its last checkpoint.
    """


class FetchError(LoopcrawlError):
    """One request failed; ``kind`` is the stable name written to the output."""

    kind: str = CONNECTION_ERROR

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class TooLarge(FetchError):
    kind = TOO_LARGE


class RedirectError(FetchError):
    kind = REDIRECT_LOOP
