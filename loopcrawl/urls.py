"""URL canonicalization, fingerprints and scope: pure functions on the hot path.

Every URL that enters the crawl is reduced to one canonical string here, and
only here, so that a page is fetched once however many ways it is linked.

The canonical form is the WHATWG URL (ada-url, a C++ parser: lower-case scheme
and host, IDNA hosts as punycode, default ports dropped, dot segments resolved)
plus what WHATWG leaves alone: the fragment is dropped, an empty query is
dropped, and percent-escapes are normalized (RFC 3986 §6.2.2.2: escapes of
unreserved characters are decoded, the others upper-cased).

A page has ~30 links, and most are written in a handful of plain forms
(``/a/b.html``, ``b.html``, ``http://same-origin/...``). ``Resolver`` joins those
by string concatenation after one regex check; only the rest pay for a full
parse. A profile of a urllib-based crawler spent 45% of its CPU in urljoin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import xxhash
from ada_url import join_url, normalize_url

from .errors import ConfigError

__all__ = ["LinkMemo", "Resolver", "Scope", "canonicalize", "fingerprint", "fingerprints", "host_of",
           "strip_sessions"]

# Characters that need no encoding or normalization in a path or query of an
# http(s) URL (RFC 3986 unreserved + sub-delims + ":@/?") and '%' (WHATWG
# leaves it, escape or not); not '\\' or "'" (encoded in special-scheme queries).
_PLAIN = re.compile(r"[A-Za-z0-9\-._~/!$&()*+,;=:@?%]*").fullmatch
# An escape the canonical form writes otherwise: lower-case hex, or an
# unreserved character (ALPHA, DIGIT, "-", ".", "_", "~") that is decoded.
_ESCAPE_TO_FIX = re.compile(
    r"%(?:[0-9A-F][a-f]|[a-f][0-9A-Fa-f]|3[0-9]|[46][1-9A-F]|[57][0-9A]|2[DE]|5F|7E)").search
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HTML_WS = " \t\n\r\f"


_HEX = "0123456789ABCDEFabcdef"
# "xx" of a "%xx" escape (any case) -> what the canonical form writes: the
# character if unreserved, else the escape in upper case. 484 entries.
_ESCAPES = {a + b: chr(int(a + b, 16)) if int(a + b, 16) in _UNRESERVED else "%" + (a + b).upper()
            for a in _HEX for b in _HEX}


def _fix_escapes(text: str) -> str:
    """Percent-escapes normalized (RFC 3986 §6.2.2.2); a '%' that starts no
    escape stays as it is, as WHATWG leaves it."""
    parts = text.split("%")
    out = [parts[0]]
    for p in parts[1:]:
        fixed = _ESCAPES.get(p[:2])
        out.append("%" + p if fixed is None else fixed + p[2:])
    return "".join(out)


def _finish(href: str) -> str:
    """Apply what WHATWG leaves alone to a parsed href: fragment, '?', escapes."""
    i = href.find("#")
    if i >= 0:
        href = href[:i]
    if href.endswith("?"):
        href = href[:-1]
    if "%" in href:
        # The authority was already normalized by the parser; only path+query.
        start = href.find("/", href.find("//") + 2)
        if start > 0:
            href = href[:start] + _fix_escapes(href[start:])
    return href if "=" not in href and "(" not in href else strip_sessions(href)


# Session ids that sites put in URLs instead of a cookie (Java's ";jsessionid=",
# PHP's trans-sid "PHPSESSID", ASP's "ASPSESSIONIDxxxxxxxx", ColdFusion's
# CFID/CFTOKEN, the common "sid", "sessionid", ...): each visit gets a fresh
# one, so every page would be a new URL without end. Heritrix's canonicalization
# rules strip the same names. A parameter is a session id by its name, in any
# case; ASP.NET's cookieless "/(S(...))/" path segment is one too.
_SESSION_NAMES = (r"(?:jsessionid|phpsessid|aspsessionid[a-z]*|sid|sessid|sess_id|sessionid"
                  r"|session_id|session-id|cfid|cftoken|zenid|oscsid)")
_SESSION_HINT = re.compile(rf"(?i)[;?&]{_SESSION_NAMES}=|/\([A-Za-z]\(").search
_SESSION_PARAM = re.compile(rf"(?i){_SESSION_NAMES}=").match
_SESSION_PATH_PARAM = re.compile(rf"(?i);{_SESSION_NAMES}=[^/;?]*").sub
_ASPNET_SEGMENT = re.compile(r"/\((?:[A-Za-z]\([^()/]*\))+\)(?=/)").sub


def strip_sessions(url: str) -> str:
    """``url`` (canonical, or a canonical path) without session ids: query
    parameters and ``;name=value`` path parameters named as one, and ASP.NET's
    ``/(S(...))/`` segment. A query left empty goes with its '?'."""
    if "=" not in url and "(" not in url:
        return url  # nearly every URL: two 'in' tests
    low = url.lower()  # every name holds one of these: four more, then the regex
    if ("sid" not in low and "ess" not in low and "cf" not in low and "zen" not in low
            and "(" not in url) or not _SESSION_HINT(url):
        return url
    q = url.find("?")
    path, query = (url, "") if q < 0 else (url[:q], url[q + 1 :])
    if ";" in path:
        path = _SESSION_PATH_PARAM("", path)
    if "(" in path:
        path = _ASPNET_SEGMENT("", path)
    if query:
        query = "&".join(p for p in query.split("&") if not _SESSION_PARAM(p))
    return path + "?" + query if query else path


def canonicalize(url: str, base: str | None = None) -> str | None:
    """The canonical http(s) form of ``url`` (joined to ``base``), or None.

    None means "not a crawlable URL": unparsable, or a scheme other than
    http/https (mailto:, javascript:, data:, file:, ...).
    """
    try:
        href = join_url(base, url.strip(_HTML_WS)) if base else normalize_url(url.strip(_HTML_WS))
    except ValueError:
        return None
    # WHATWG guarantees a non-empty host for http(s) and a lower-case scheme.
    if not href.startswith(("http://", "https://")):
        return None
    return _finish(href)


def fingerprint(url: str, method: str = "GET", body: bytes = b"") -> int:
    """A stable 64-bit id of a canonical request, the key of the seen set.

    XXH3 rather than ``hash()``: it must agree across processes and runs
    (multi-process workers, resumed crawls), and it costs ~0.1 µs a URL.
    64 bits make a collision (a page wrongly skipped) unlikely below
    billions of URLs: p ≈ n² / 2⁶⁵.
    """
    data = url.encode()
    if method != "GET" or body:
        data += b"\0" + method.encode() + b"\0" + body
    return xxhash.xxh3_64_intdigest(data)


def fingerprints(urls: Iterable[str]) -> list[int]:
    """``fingerprint(url)`` of each GET ``url``, in one call for a page's links."""
    return [xxhash.xxh3_64_intdigest(u.encode()) for u in urls]


def host_of(url: str) -> str:
    """``host[:port]`` of a canonical URL (cheap: canonical URLs are regular)."""
    return url.split("/", 3)[2]


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:").match
_HTTP = ("http", "https")
# Raw origins seen in links ("HTTP://Example.com:80") -> their canonical form
# ("http://example.com"), or "" when a link to it needs the full parse. Bounded:
# cleared when full, which only costs a re-parse.
_ORIGINS: dict[str, str] = {}
_MAX_ORIGINS = 4096


def _canonical_origin(raw: str) -> str:
    """The canonical ``scheme://host[:port]`` of a raw origin, or ""."""
    canon = _ORIGINS.get(raw)
    if canon is None:
        c = canonicalize(raw + "/") if "?" not in raw else None
        canon = c[:-1] if c is not None and c.count("/") == 3 and c.endswith("/") else ""
        if len(_ORIGINS) >= _MAX_ORIGINS:
            _ORIGINS.clear()
        _ORIGINS[raw] = canon
    return canon


def _finish_path(path: str) -> str:
    """Escapes normalized as ``canonicalize`` does, then dot segments (WHATWG
    reads "%2e" as "." in a segment, so decoding first gives the same)."""
    if "%" in path and _ESCAPE_TO_FIX(path):  # most escapes are fine as written
        path = _fix_escapes(path)
    if "/." in path:
        path = _remove_dots(path)
    return path


def _remove_dots(path: str) -> str:
    """RFC 3986 §5.2.4 (WHATWG's path state) on an absolute path of plain
    characters: "." segments vanish, ".." removes the one before, never above
    the root; a trailing one leaves the path ending in "/"."""
    q = path.find("?")
    query = "" if q < 0 else path[q:]
    segments = (path if q < 0 else path[:q]).split("/")
    out: list[str] = []
    last = len(segments) - 1
    for i in range(1, last + 1):
        s = segments[i]
        if s == "..":
            if out:
                out.pop()
            if i == last:
                out.append("")
        elif s == ".":
            if i == last:
                out.append("")
        else:
            out.append(s)
    return "/" + "/".join(out) + query


class Resolver:
    """Resolves the links of one page against its base URL.

    Built once per page; ``resolve`` is called once per link, so it keeps the
    common forms to string operations and falls back to ada-url for the rest:
    paths (absolute, relative, with dot segments), query-only links, links to
    an origin seen before (any case, default port), and other schemes. Only
    characters that need no escaping take the fast path.
    """

    __slots__ = ("base", "base_dir", "base_path", "origin", "origin_slash", "scheme")

    def __init__(self, base: str, *, canonical: bool = False) -> None:
        canon = base if canonical else canonicalize(base)
        if canon is None:
            raise ValueError(f"not an http(s) URL: {base!r}")
        self.base = canon
        scheme_end = canon.index("//")
        self.scheme = canon[: scheme_end - 1]
        path_start = canon.find("/", scheme_end + 2)
        self.origin = canon[:path_start]
        self.origin_slash = canon[: path_start + 1]
        q = canon.find("?")
        self.base_path = canon[path_start:] if q < 0 else canon[path_start:q]
        self.base_dir = self.base_path[: self.base_path.rfind("/") + 1]

    def resolve(self, href: str) -> str | None:
        """Canonical absolute URL for ``href`` on this page, or None to skip it."""
        if not _PLAIN(href):  # '#', whitespace, or something to escape
            full = href.strip(_HTML_WS)  # what WHATWG strips (C0 and space)
            href = full[: full.index("#")] if "#" in full else full
            if not _PLAIN(href):
                return canonicalize(full, self.base)
            if not href:
                return None if full else self.base  # "#top": this very page
        if not href:
            return self.base
        if href.endswith("?"):
            return canonicalize(href, self.base)
        c = href[0]
        host_start = 0  # an absolute URL: where its host starts
        if c == "/":
            if href[1:2] != "/":
                origin, path = self.origin, href
            else:  # scheme-relative: //host/path
                href = self.scheme + ":" + href
                host_start = len(self.scheme) + 3
        elif c == "?":
            origin, path = self.origin, self.base_path + href
        elif c == "h" and href.startswith(self.origin_slash):  # this site, written out
            if "%" not in href and "/." not in href:
                return href if "=" not in href and "(" not in href else strip_sessions(href)
            origin, path = self.origin, href[len(self.origin) :]
        elif c == ".":
            while href.startswith("./"):  # "./a" is "a"
                href = href[2:]
            origin = self.origin
            path = self._up(href) if href.startswith("../") else self.base_dir + href
        # A scheme ends at the first ':'; http(s), the common one, needs no regex.
        elif ":" in href and (
                (scheme := href[: href.index(":")].lower()) in _HTTP or _SCHEME(href)):
            if scheme not in _HTTP:
                return None  # mailto:, javascript:, tel:, ftp:, ...
            if href[len(scheme) + 1 : len(scheme) + 3] != "//":
                return canonicalize(href, self.base)  # "http:x" is relative, oddly
            host_start = len(scheme) + 3
        else:
            origin, path = self.origin, self.base_dir + href
        if host_start:
            slash = href.find("/", host_start)
            raw = href[:slash] if slash > 0 else ""
            origin = _ORIGINS.get(raw) or _canonical_origin(raw) if raw else ""
            if not origin:
                return canonicalize(href, self.base)
            path = href[slash:]
        if "%" in path or "/." in path:
            path = _finish_path(path)
        if "=" in path or "(" in path:
            path = strip_sessions(path)
        return origin + path

    def _up(self, href: str) -> str:
        """The path of a link with leading "../" segments: up the base
        directory, never above the root (the excess ".." is dropped)."""
        d, rest = self.base_dir, href
        while rest.startswith("../"):
            rest = rest[3:]
            if len(d) > 1:  # not at "/"
                d = d[: d.rfind("/", 0, -1) + 1]
        return d + rest


_MISS = object()
# An href that starts so may resolve against more of the base URL than its
# directory: "?q" (the path), "" and "#frag" (the page itself), and any of
# these after leading whitespace, which is stripped.
_BASE_PATH_FORMS = "?#" + _HTML_WS


class LinkMemo:
    """The hrefs resolved on earlier pages, by the directory they were on.

    A site's menus and footers repeat on every page, so the same hrefs come
    back page after page (3 in 10 of the test site's links, which has few; more
    on real sites): each costs a dict lookup instead of a resolution. An href
    resolves the same way against any base with the same origin and directory
    (RFC 3986 §5.2.3), except the forms in ``_BASE_PATH_FORMS``, which are not
    kept. Cleared when it holds ``max_hrefs``, so memory stays bounded.
    """

    def __init__(self, max_hrefs: int = 8192) -> None:
        self.max_hrefs = max_hrefs
        self._dirs: dict[str, dict[str, str | None]] = {}
        self._size = 0

    def __len__(self) -> int:
        """How many hrefs are kept."""
        return self._size

    def resolve_all(self, resolver: Resolver, hrefs: list[str]) -> list[str | None]:
        """``resolver.resolve`` of each href, in order."""
        if self._size >= self.max_hrefs:  # may overshoot by one page's hrefs
            self._dirs.clear()
            self._size = 0
        key = resolver.origin + resolver.base_dir
        memo = self._dirs.get(key)
        if memo is None:
            memo = self._dirs[key] = {}
        get = memo.get
        resolve = resolver.resolve
        out: list[str | None] = []
        append = out.append
        for h in hrefs:
            u = get(h, _MISS)
            if u is _MISS:
                u = resolve(h)
                if h[:1] not in _BASE_PATH_FORMS:  # also "": empty is in any string
                    memo[h] = u
                    self._size += 1
            append(u)  # type: ignore[arg-type]
        return out


_SCOPES = ("host", "domain", "any")


def _no_port(host: str) -> str:
    """``host[:port]`` without the port; an IPv6 literal keeps its brackets."""
    return host if host.endswith("]") else host.rsplit(":", 1)[0]


class Scope:
    """Which URLs a crawl may follow: by host, domain, and allow/deny regexes.

    ``host`` keeps the seeds' exact ``host:port``; ``domain`` also admits
    subdomains of the seeds' hosts (minus a leading ``www.``), as Scrapy's
    ``allowed_domains`` does; ``any`` admits every http(s) URL.
    """

    def __init__(
        self,
        mode: str,
        seeds: Sequence[str],
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
    ) -> None:
        if mode not in _SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(_SCOPES)}, not {mode!r}")
        self.mode = mode
        self.hosts = frozenset(host_of(s) for s in seeds)
        self.domains = tuple(sorted({_no_port(h).removeprefix("www.") for h in self.hosts}))
        try:
            self.allow = [re.compile(p) for p in allow]
            self.deny = [re.compile(p) for p in deny]
        except re.error as e:
            raise ConfigError(f"bad --allow/--deny pattern: {e}") from None
        # Canonical URLs start "scheme://host[:port]/": one startswith per link.
        self._prefixes = tuple(f"{sch}://{h}/" for h in sorted(self.hosts)
                               for sch in ("http", "https"))

    def filter(self, urls: Iterable[str]) -> list[str]:
        """The canonical ``urls`` in scope (``allows`` on each, one call for a page)."""
        if self.mode == "host" and not self.allow and not self.deny:
            prefixes = self._prefixes
            return [u for u in urls if u.startswith(prefixes)]
        allows = self.allows
        return [u for u in urls if allows(u)]

    def allows(self, url: str) -> bool:
        """True if the canonical ``url`` is in scope and passes the regexes."""
        if self.mode == "host":
            if not url.startswith(self._prefixes):
                return False
        elif self.mode == "domain":
            host = _no_port(host_of(url))
            if not any(host == d or host.endswith("." + d) for d in self.domains):
                return False
        if self.allow and not any(p.search(url) for p in self.allow):
            return False
        return not (self.deny and any(p.search(url) for p in self.deny))
