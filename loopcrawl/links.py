"""Title and link extraction from HTML: lexbor's tree, or a tokenizer scan.

Only what the crawl needs is read: ``<title>``, ``<base href>`` and the
``href`` of ``<a>``/``<area>``; resolution is left to ``urls``. A
``<meta http-equiv="refresh">`` that sends the browser on within
``MAX_REFRESH_DELAY`` seconds is a link too (``meta_refresh``: w3lib's
reading, as Scrapy's MetaRefreshMiddleware follows it), so a site whose front
page only refreshes to its home page is crawled.

Pages are parsed by lexbor (selectolax), a C parser that is hard to beat
(~37 instructions a byte). But a tree builder is quadratic in the depth of
unclosed elements (100,000 nested ``<div>`` took lexbor 58 s), so a page with
more than ``MAX_UNCLOSED`` of them is read by ``scan`` instead: the HTML
tokenizer's rules for what decides whether ``<a href>`` is a tag, as one
regular expression, in linear time. It follows comments (``<!-- -->``,
``--!>``, bogus ``<!...>``/``<?...>``/``</ ...>``), raw text (``script`` with
its escape states, ``style``, ``textarea``, ``title``, ``xmp``, ``iframe``,
``noembed``, ``noframes``; ``plaintext``), attribute quoting (a ``>`` or
``<a`` inside a quoted value is text), the first of duplicate attributes,
``<template>`` content (not part of the document), and character references
as attribute values read them (``&copy=2`` in a URL stays as written).

The tests check that both give the same links on every page of the test site
and on thousands of generated tag-soup documents. Where they may part, by
design: the tree builder clones a misnested ``<a>`` (the same link twice,
which the crawl dedups anyway), puts an ``<a>`` left open across
``</template>`` back into the document, and reads ``<style>``/``<script>``
inside ``<svg>``/``<math>`` as markup; an attribute name that starts with
'=' and holds a quote ends a tag differently. (The scan is no faster than
lexbor on ordinary pages: the regex engine runs ~2× the instructions.)
"""

from __future__ import annotations

import functools
import html as _html
import re
from dataclasses import dataclass
from html.entities import html5 as _ENTITIES

from selectolax.lexbor import LexborHTMLParser
from w3lib.html import get_meta_refresh

from .encoding import decode_html
from .urls import LinkMemo, Resolver, canonicalize

__all__ = ["MAX_REFRESH_DELAY", "MAX_UNCLOSED", "LinkParser", "PageLinks", "ResolvedLinks",
           "extract", "extract_tree", "meta_refresh", "scan"]

# A refresh that waits longer is a page reloading itself for its reader, not
# a redirect (Scrapy's METAREFRESH_MAXDELAY).
MAX_REFRESH_DELAY = 100.0


@dataclass(slots=True)
class PageLinks:
    title: str | None
    base_href: str | None
    hrefs: list[str]
    truncated: bool = False  # more links than the cap; the rest were ignored


# -- the scan -------------------------------------------------------------------
_WS = r"[\t\n\f\r ]"  # HTML whitespace (not \v, which \s includes)


def _ci(names: str) -> str:
    """Tag and attribute names in any case: ``[sS][cC]...`` rather than re.I,
    which makes every character comparison of the scan ~25% slower."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in names)



_END = r"(?=[\t\n\f\r />]|\Z)"  # where a tag name ends
_VALUE = r"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >]*+)"""
_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
_ATTR = rf"[\t\n\f\r /]*+{_NAME}(?:{_WS}*+={_WS}*+{_VALUE})?"
_TAG_REST = rf"(?:{_ATTR})*+[\t\n\f\r /]*+>?"  # attributes to the '>' (or EOF)
# The same for tags whose attributes are not read, ~2× faster: a quote opens a
# value only after '='. It parts from the tokenizer only on an attribute whose
# name starts with '=' and holds a quote (`<p ="a>b">`), which no page writes.
_SKIP_REST = rf"(?:[^>=]++|={_WS}*+{_VALUE})*+>?"
_RAW = "script|style|textarea|xmp|iframe|noembed|noframes"
_NEEDED = _ci(f"a|area|base|title|template|plaintext|{_RAW}")


def _text_until(name: str) -> str:
    """Text up to ``</name`` (or EOF), as an unrolled loop: no backtracking."""
    return rf"[^<]*+(?:<(?!/{name}{_END})[^<]*+)*+"


# An element of raw text, to its end tag. One alternative per name: a
# backreference would need a group inside a possessive loop, which CPython
# 3.11's re gets wrong ("The span of capturing group is wrong").
_SCRIPT_N, _TEMPLATE, _PLAINTEXT, _HREF, _TITLE, _A, _BASE = map(
    _ci, ("script", "template", "plaintext", "href", "title", "a|area", "base"))
_RAW_TEXT = "\n  | ".join(rf"<{_ci(n)}{_END}{_SKIP_REST}{_text_until(_ci(n))}(?:</{_ci(n)}{_END})?"
                          for n in _RAW.split("|") if n != "script")
# <script> has the tokenizer's escape states: after "<!--", a "<script" makes
# the next "</script>" close only that inner one (`document.write("<!--
# <script>...</script> -->")`), until "-->".
_S_END = rf"</{_SCRIPT_N}{_END}"
_S_DOUBLE = rf"(?:[^<-]++|-(?!->)|<(?!/{_SCRIPT_N}{_END}))*+"
_S_ESCAPED = (rf"(?:[^<-]++|-(?!->)|<(?!/{_SCRIPT_N}{_END}|{_SCRIPT_N}{_END})"
              rf"|<{_SCRIPT_N}{_END}{_S_DOUBLE}{_S_END})*+(?:-->|<{_SCRIPT_N}{_END}{_S_DOUBLE}(?:-->)?)?")
_SCRIPT = (rf"<{_SCRIPT_N}{_END}{_SKIP_REST}"
           rf"(?:[^<]++|<(?!/{_SCRIPT_N}{_END}|!--)|<!--(?:-*+>|{_S_ESCAPED}))*+(?:{_S_END})?")
_SKIP = rf"""(?:
    [^<]++
  | </(?!{_TEMPLATE}{_END})[A-Za-z][^\t\n\f\r />]*+{_SKIP_REST}  # end tag
  | <(?!(?:{_NEEDED}){_END})[A-Za-z][^\t\n\f\r />]*+{_SKIP_REST}  # any other tag
  | <!--(?:-?>|[^-]*+(?:-(?!-!?>)[^-]*+)*+(?:--!?>)?)  # comment, to --> or --!> (or EOF)
  | <[!?][^>]*+>?                                    # doctype, bogus comment
  | </(?![A-Za-z])[^>]*+>?                           # </>, or a bogus comment
  | {_RAW_TEXT}
  | {_SCRIPT}
  | <(?![A-Za-z!?/])                                 # a '<' that is text
)*+"""
# One match per token the crawl needs: what comes before it is skipped. The
# last group that matched names the token (``Match.lastgroup``).
_NOT_HREF = rf"(?!{_HREF}(?:[\t\n\f\r />=]|\Z)){_NAME}(?:{_WS}*+={_WS}*+{_VALUE})?"
_TOKEN_PATTERN = rf"""{_SKIP}(?:
    <(?:{_A}){_END}
      (?:[\t\n\f\r /]*+{_NOT_HREF})*+
      (?:[\t\n\f\r /]*+{_HREF}{_WS}*+={_WS}*+(?:"(?P<d>[^"]*+)"|'(?P<s>[^']*+)'|(?P<u>[^\t\n\f\r >"'][^\t\n\f\r >]*+))
         (?:{_ATTR})*+[\t\n\f\r /]*+>
       |{_TAG_REST})
  | <{_BASE}{_END}(?:[\t\n\f\r /]*+{_NOT_HREF})*+
      (?:[\t\n\f\r /]*+{_HREF}{_WS}*+={_WS}*+(?P<base>{_VALUE})(?:{_ATTR})*+[\t\n\f\r /]*+>
       |{_TAG_REST})
  | <{_TITLE}{_END}{_SKIP_REST}(?P<title>{_text_until(_TITLE)})
  | <(?P<template>{_TEMPLATE}){_END}{_SKIP_REST}
  | </(?P<untemplate>{_TEMPLATE}){_END}{_SKIP_REST}
  | <(?P<plaintext>{_PLAINTEXT}){_END}
  | \Z
)"""


@functools.cache
def _token() -> re.Pattern[str]:
    """The scan's pattern, compiled on first use (~15 ms; most crawls never scan)."""
    return re.compile(_TOKEN_PATTERN, re.S | re.X)


_HREF_GROUPS = frozenset(("d", "s", "u"))
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9A-Fa-f]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def _attr_charref(m: re.Match[str]) -> str:
    """One character reference in an attribute value (HTML §13.2.5.72): a
    legacy name without ';' is decoded unless '=' or an alphanumeric follows."""
    ref = m.group(1)
    if ref[0] == "#":
        return _html.unescape(m.group())
    value = _ENTITIES.get(ref)
    if value is None or (ref[-1] != ";" and m.string[m.end() : m.end() + 1] == "="):
        return m.group()  # not a reference (or a prefix followed by an alphanumeric)
    return value


def _unquote(raw: str) -> str:
    """A ``_VALUE`` match without its quotes (an unterminated one runs to EOF)."""
    if raw[:1] in ('"', "'"):
        return raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
    return raw


def _attr_value(raw: str) -> str:
    """An attribute value (without quotes) as the tree would hold it: character
    references decoded, CR and NUL as the input stream has them."""
    if "&" in raw:
        raw = _CHARREF.sub(_attr_charref, raw)
    if "\r" in raw or "\0" in raw:  # the input stream's preprocessing
        raw = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    return raw


def scan(html: str | bytes, max_links: int = 10_000) -> PageLinks:
    """Title, base href and hrefs of a page, by the tokenizer's rules."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")  # once: ~1 µs/KB, no decode per link
    title = base = None
    got_title = False
    in_template = 0  # <template> content is a fragment apart from the document
    hrefs: list[str] = []
    append = hrefs.append
    for m in _token().finditer(html):
        kind = m.lastgroup
        if kind in _HREF_GROUPS:
            if in_template:
                continue
            href = _attr_value(m.group(kind))
            if href:
                if len(hrefs) >= max_links:
                    return PageLinks(title, base, hrefs, truncated=True)
                append(href)
        elif kind == "title":
            if not got_title and not in_template:
                got_title = True
                title = " ".join(_html.unescape(m.group(kind)).split()) or None
        elif kind == "base":
            if base is None and not in_template:
                base = _attr_value(_unquote(m.group(kind))) or None
        elif kind == "template":
            in_template += 1
        elif kind == "untemplate":
            in_template = max(0, in_template - 1)
        elif kind is None and m.end() < len(html):
            continue  # a link tag without an href
        else:  # the end, or <plaintext>: the rest is text
            break
    return PageLinks(title, base, hrefs)


# -- the tree ----------------------------------------------------------------
# An element that is closed costs two '<'; past this many unclosed ones the
# page is scanned, not parsed into a tree.
MAX_UNCLOSED = 3_000


def extract_tree(html: str | bytes, max_links: int = 10_000) -> PageLinks:
    """Title, base href and hrefs from lexbor's tree (``<a>`` before ``<area>``)."""
    # tags() walks lexbor's tag index: ~40% cheaper than a CSS selector here.
    tree = LexborHTMLParser(html)
    title = base = None
    for t in tree.tags("title"):
        title = " ".join(t.text().split()) or None
        break
    for b in tree.tags("base"):
        base = b.attributes.get("href")
        if base:
            break
    # Comprehensions, then the cap: cheaper than checking it per link.
    hrefs = [h for node in tree.tags("a") if (h := node.attributes.get("href"))]
    if len(hrefs) <= max_links:  # (one more tells that the cap cut some)
        hrefs += [h for node in tree.tags("area") if (h := node.attributes.get("href"))]
    if len(hrefs) > max_links:
        return PageLinks(title, base, hrefs[:max_links], truncated=True)
    return PageLinks(title, base, hrefs)


def extract(html: str | bytes, max_links: int = 10_000) -> PageLinks:
    """Title, base href and raw hrefs of a page, in bounded time."""
    lt, close = ("<", "</") if isinstance(html, str) else (b"<", b"</")
    # MAX_UNCLOSED start tags take at least 5 bytes each: smaller pages (most
    # of them) skip the count.
    if len(html) > 5 * MAX_UNCLOSED and (
        html.count(lt) - 2 * html.count(close) > MAX_UNCLOSED  # type: ignore[arg-type]
    ):
        return scan(html, max_links)
    return extract_tree(html, max_links)


def meta_refresh(html: str | bytes) -> str | None:
    """The URL a ``<meta http-equiv="refresh">`` sends the browser to in less
    than ``MAX_REFRESH_DELAY`` seconds, as written (resolved with the links),
    or None. Two ``memmem`` scans rule it out on almost every page (w3lib's
    own reading costs a regex over the page)."""
    tail = ("efresh", "EFRESH") if isinstance(html, str) else (b"efresh", b"EFRESH")
    if tail[0] not in html and tail[1] not in html:  # type: ignore[operator]
        return None
    interval, url = get_meta_refresh(html)
    if interval is None or not url or interval >= MAX_REFRESH_DELAY:
        return None
    return url


@dataclass(slots=True)
class ResolvedLinks:
    """What the link follower needs of an HTML page: its title and its links,
    resolved (canonical, unique, in page order). A worker process (``--workers``)
    parses the page and sends this with the response."""

    title: str | None
    urls: list[str]
    truncated: bool = False  # more links than max_links_per_page
    unfollowable: dict[str, int] | None = None  # hrefs that gave no URL, by kind
    # From a worker process: how many links the page has (``urls`` holds only
    # those the worker had not reported before), and the hashes of all of
    # them (``traps.link_hashes``); -1 and None when ``urls`` is every link.
    found: int = -1
    hashes: bytes | None = None
    # From a worker process that kept the body: its length, its word sketch
    # and whether it barely differs from its parent (``traps.compare``).
    size: int = -1
    words: int = 0
    similar: bool = False


class LinkParser:
    """Reads the links of HTML pages: decode, lexbor, ``LinkMemo`` + ``Resolver``.

    One per process that parses (the engine's link follower, or a worker
    process): its memos hold what earlier pages of the crawl resolved."""

    def __init__(self, max_links: int) -> None:
        self._max_links = max_links
        self._links = LinkMemo()
        self._unfollowable: dict[str, str] = {}  # href -> its kind (see _count_unfollowable)

    def parse(self, url: str, body: bytes, charset: str | None) -> ResolvedLinks:
        """The title and links of the page at ``url`` (canonical: the request
        URL or a checked redirect target)."""
        text, _ = decode_html(body, charset)
        page = extract(text, self._max_links)
        base = url
        if page.base_href:
            base = canonicalize(page.base_href, url) or url
        hrefs = page.hrefs
        if (refresh := meta_refresh(text)) is not None:
            hrefs = [*hrefs, refresh]
        resolved = self._links.resolve_all(Resolver(base, canonical=True), hrefs)
        found = dict.fromkeys(resolved)  # unique, in page order (a set's order varies)
        unfollowable = None
        if None in found:
            del found[None]
            unfollowable = self._count_unfollowable(hrefs, resolved)
        return ResolvedLinks(page.title, list(found), page.truncated,  # type: ignore[arg-type]
                             unfollowable)

    def _count_unfollowable(self, hrefs: list[str], resolved: list[str | None]) -> dict[str, int]:
        """Why some hrefs gave no URL: another scheme, or not a URL at all.

        The same few (``mailto:``, ``javascript:``) are on every page of a site,
        so each href's verdict is kept (bounded)."""
        counts: dict[str, int] = {}
        kinds = self._unfollowable
        i = -1
        for _ in range(resolved.count(None)):
            i = resolved.index(None, i + 1)
            href = hrefs[i]
            kind = kinds.get(href)
            if kind is None:
                if len(kinds) >= 4096:
                    kinds.clear()
                kind = kinds[href] = _unfollowable_kind(href)
            if kind:
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def _unfollowable_kind(href: str) -> str:
    """Why an href gave no URL: "not_http", "invalid_url", or "" (a link to
    the page itself: empty, or only a fragment)."""
    h = href.strip()
    if not h or h.startswith("#"):
        return ""
    scheme = h.split(":", 1)[0].lower() if ":" in h else ""
    return "not_http" if scheme.isalpha() and scheme not in ("http", "https") else "invalid_url"
