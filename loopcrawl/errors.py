"""The one exception tree of loopcrawl, and the failure kinds of its output.

    LoopcrawlError
    ├── ConfigError        bad settings, seed URL or output path: the CLI exits 2
    ├── StateError         a --state file that is corrupt, foreign or in use
    ├── OutputError        the output cannot be written (disk full): the crawl stops
    ├── DropItem           raised by a spider's pipeline to drop an item (not a failure)
    └── FetchError         one URL failed; ``kind`` (an ``ErrorKind``) names it in the output
        ├── TooLarge           body (decompressed) above the size cap
        ├── RedirectError      too many hops, a loop, or a refused target
        ├── RobotsUnavailable  robots.txt could not be read; the page waits or fails
        └── (others are built from aiohttp and socket errors in ``net/fetcher.py``)

Errors from aiohttp and sqlite3 are wrapped where they enter, so callers only
ever catch these. What each ``ErrorKind`` means, and whether it is retried,
is in ``docs/output.md``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """A record's ``error``: a ``str``, so records serialize as the plain string."""

    TIMEOUT = "timeout"  # no complete answer within a timeout (connect, read, total)
    CONNECTION_ERROR = "connection_error"  # reset, closed mid-answer, malformed HTTP
    # The host cannot be reached at all (issue: fail fast and say so).
    CONNECTION_REFUSED = "connection_refused"  # nothing listens on the port
    DNS_ERROR = "dns_error"  # the host name does not resolve
    TLS_ERROR = "tls_error"  # handshake or certificate refused (unknown CA, name mismatch)
    PROXY_ERROR = "proxy_error"  # the --proxy cannot be reached
    TOO_LARGE = "too_large"
    # A 2xx body that is not what its Content-Encoding says (plain text sent
    # as gzip): not retried, it will not change.
    CONTENT_ENCODING_ERROR = "content_encoding_error"
    HTTP_STATUS = "http_status"  # a 4xx or 5xx answer (after its retries), or below 100
    ROBOTS_DENIED = "robots_denied"  # robots.txt forbids it, or a redirect hop to such a URL
    ROBOTS_UNREACHABLE = "robots_unreachable"  # robots.txt answered 429/5xx or timed out
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    REDIRECT_REFUSED = "redirect_refused"  # a non-http(s) target, or out of scope
    INVALID_URL = "invalid_url"
    TRAP = "trap"
    INVALID_SITEMAP = "invalid_sitemap"
    # Spiders: a callback (or errback) raised; a pipeline raised (not DropItem).
    CALLBACK_ERROR = "callback_error"
    PIPELINE_ERROR = "pipeline_error"
    INTERNAL_ERROR = "internal_error"  # a bug of loopcrawl's: the crawl went on


# The names the rest of the package uses (``errors.TIMEOUT``): the members themselves.
TIMEOUT = ErrorKind.TIMEOUT
CONNECTION_ERROR = ErrorKind.CONNECTION_ERROR
CONNECTION_REFUSED = ErrorKind.CONNECTION_REFUSED
DNS_ERROR = ErrorKind.DNS_ERROR
TLS_ERROR = ErrorKind.TLS_ERROR
PROXY_ERROR = ErrorKind.PROXY_ERROR
TOO_LARGE = ErrorKind.TOO_LARGE
CONTENT_ENCODING_ERROR = ErrorKind.CONTENT_ENCODING_ERROR
HTTP_STATUS = ErrorKind.HTTP_STATUS
ROBOTS_DENIED = ErrorKind.ROBOTS_DENIED
ROBOTS_UNREACHABLE = ErrorKind.ROBOTS_UNREACHABLE
REDIRECT_LOOP = ErrorKind.REDIRECT_LOOP
TOO_MANY_REDIRECTS = ErrorKind.TOO_MANY_REDIRECTS
REDIRECT_REFUSED = ErrorKind.REDIRECT_REFUSED
INVALID_URL = ErrorKind.INVALID_URL
TRAP = ErrorKind.TRAP
INVALID_SITEMAP = ErrorKind.INVALID_SITEMAP
CALLBACK_ERROR = ErrorKind.CALLBACK_ERROR
PIPELINE_ERROR = ErrorKind.PIPELINE_ERROR
INTERNAL_ERROR = ErrorKind.INTERNAL_ERROR

# Failures worth another attempt (``retries``, with back-off): the next try
# may well succeed. A refused connection or a failed lookup is retried too, but
# the back-off keeps that short; a certificate is not retried: it will not change.
TRANSIENT: frozenset[ErrorKind] = frozenset(
    (TIMEOUT, CONNECTION_ERROR, CONNECTION_REFUSED, DNS_ERROR, PROXY_ERROR))
# The host cannot be reached: a failed robots.txt fetch fails its pages with
# this kind at once (RFC 9309's "unreachable" waiting is for hosts that answer).
HOST_UNREACHABLE: frozenset[ErrorKind] = frozenset(
    (CONNECTION_REFUSED, DNS_ERROR, TLS_ERROR, PROXY_ERROR))
# The crawl's own policy, not a failure of the site: a resumed crawl does not
# fetch these again (``--recrawl-failed`` neither).
POLICY: frozenset[ErrorKind] = frozenset((ROBOTS_DENIED, REDIRECT_REFUSED, TRAP))
REDIRECT_FAILURES: frozenset[ErrorKind] = frozenset(
    (REDIRECT_LOOP, TOO_MANY_REDIRECTS, REDIRECT_REFUSED))


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


class DropItem(LoopcrawlError):
    """Raised by a pipeline to drop an item; counted as ``items["dropped"]``."""


class FetchError(LoopcrawlError):
    """One request failed; ``kind`` is the stable name written to the output."""

    kind: ErrorKind = CONNECTION_ERROR

    def __init__(self, message: str, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class TooLarge(FetchError):
    kind = TOO_LARGE


class RedirectError(FetchError):
    kind = REDIRECT_LOOP


class RobotsUnavailable(FetchError):
    """robots.txt of the URL's host could not be read.

    ``kind`` is ``robots_unreachable`` for a host that answered (429, 5xx) or
    timed out: RFC 9309 treats it as fully disallowed for now, so the page is
    tried again after ``retry_in`` seconds. For a host that cannot be reached
    it is that failure (``connection_refused``, ``dns_error``, ``tls_error``,
    ``proxy_error``); ``retry_in`` is None when another try cannot help.
    """

    kind = ROBOTS_UNREACHABLE

    def __init__(self, message: str, kind: ErrorKind, retry_in: float | None) -> None:
        super().__init__(message, kind)
        self.retry_in = retry_in
