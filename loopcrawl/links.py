"""Title and link extraction from HTML: a tokenizer scan, no tree.

A crawl needs three things from a page: ``<title>``, ``<base href>`` and the
``href`` of ``<a>``/``<area>``. Building a DOM for that costs more than the
rest of the page's processing (lexbor: ~90 µs to parse a 10 KB page, ~30 µs
more to walk it), and a tree builder is quadratic on some tag soup (100,000
nested ``<div>`` took lexbor 58 s). ``scan`` runs, as one regular expression,
the HTML tokenizer's rules for what decides whether ``<a href>`` is a tag:
comments (``<!-- -->``, ``--!>``, bogus ``<!...>``/``<?...>``/``</ ...>``),
raw text (``script`` with its escape states, ``style``, ``textarea``,
``title``, ``xmp``, ``iframe``, ``noembed``, ``noframes``; ``plaintext``),
attribute quoting (a ``>`` or ``<a`` inside a quoted value is text), the
first of duplicate attributes, ``<template>`` content (not part of the
document), and character references as attribute values read them
(``&copy=2`` in a URL stays as written). Each match is one token the crawl
needs; text and other tags are skipped inside the regex engine, in linear
time. It costs ~55% of lexbor's parse and walk on the test site's pages.

``extract_tree`` (lexbor) is the reference: the tests check that both give
the same links on every page of the test site and on thousands of generated
tag-soup documents. Where they may part, by design: the tree builder clones a
misnested ``<a>`` (the same link twice, which the crawl dedups anyway), puts
an ``<a>`` left open across ``</template>`` back into the document, and
reads ``<style>``/``<script>`` inside ``<svg>``/``<math>`` as markup; an
attribute name that starts with '=' and holds a quote ends a tag differently.
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass
from html.entities import html5 as _ENTITIES

from selectolax.lexbor import LexborHTMLParser

__all__ = ["PageLinks", "extract", "extract_tree", "scan"]


@dataclass(slots=True)
class PageLinks:
    title: str | None
    base_href: str | None
    hrefs: list[str]
    truncated: bool = False  # more links than the cap; the rest were ignored


# -- the scan ---------------------------------------------------------------
_WS = r"[\t\n\f\r ]"  # HTML whitespace (not \v, which \s includes)
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
_NEEDED = f"a|area|base|title|template|plaintext|{_RAW}"


def _text_until(name: str) -> str:
    """Text up to ``</name`` (or EOF), as an unrolled loop: no backtracking."""
    return rf"[^<]*+(?:<(?!/{name}{_END})[^<]*+)*+"


# An element of raw text, to its end tag. One alternative per name: a
# backreference would need a group inside a possessive loop, which CPython
# 3.11's re gets wrong ("The span of capturing group is wrong").
_RAW_TEXT = "\n  | ".join(rf"<{n}{_END}{_SKIP_REST}{_text_until(n)}(?:</{n}{_END})?"
                          for n in _RAW.split("|") if n != "script")
# <script> has the tokenizer's escape states: after "<!--", a "<script" makes
# the next "</script>" close only that inner one (`document.write("<!--
# <script>...</script> -->")`), until "-->".
_S_END = rf"</script{_END}"
_S_DOUBLE = rf"(?:[^<-]++|-(?!->)|<(?!/script{_END}))*+"
_S_ESCAPED = (rf"(?:[^<-]++|-(?!->)|<(?!/script{_END}|script{_END})"
              rf"|<script{_END}{_S_DOUBLE}{_S_END})*+(?:-->|<script{_END}{_S_DOUBLE}(?:-->)?)?")
_SCRIPT = (rf"<script{_END}{_SKIP_REST}"
           rf"(?:[^<]++|<(?!/script{_END}|!--)|<!--(?:-*+>|{_S_ESCAPED}))*+(?:{_S_END})?")
_SKIP = rf"""(?:
    [^<]++
  | </(?!template{_END})[A-Za-z][^\t\n\f\r />]*+{_SKIP_REST}  # end tag
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
_NOT_HREF = rf"(?!href(?:[\t\n\f\r />=]|\Z)){_NAME}(?:{_WS}*+={_WS}*+{_VALUE})?"
_TOKEN_PATTERN = rf"""{_SKIP}(?:
    <(?:a|area){_END}
      (?:[\t\n\f\r /]*+{_NOT_HREF})*+
      (?:[\t\n\f\r /]*+href{_WS}*+={_WS}*+(?:"(?P<d>[^"]*+)"|'(?P<s>[^']*+)'|(?P<u>[^\t\n\f\r >"'][^\t\n\f\r >]*+))
         (?:{_ATTR})*+[\t\n\f\r /]*+>
       |{_TAG_REST})
  | <base{_END}(?:[\t\n\f\r /]*+{_NOT_HREF})*+
      (?:[\t\n\f\r /]*+href{_WS}*+={_WS}*+(?P<base>{_VALUE})(?:{_ATTR})*+[\t\n\f\r /]*+>
       |{_TAG_REST})
  | <title{_END}{_SKIP_REST}(?P<title>{_text_until("title")})
  | <(?P<template>template){_END}{_SKIP_REST}
  | </(?P<untemplate>template){_END}{_SKIP_REST}
  | <(?P<plaintext>plaintext){_END}
  | \Z
)"""
_TOKEN = re.compile(_TOKEN_PATTERN, re.I | re.S | re.X)
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


def _attr_value(raw: str) -> str:
    """An attribute value as the tree would hold it (quotes, if still there,
    removed; character references decoded; CR and NUL as the input stream has them)."""
    if raw[:1] in ('"', "'"):
        raw = raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
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
    for m in _TOKEN.finditer(html):
        kind = m.lastgroup
        if kind in _HREF_GROUPS:
            if in_template:
                continue
            href = m.group(kind)
            if "&" in href or "\r" in href or "\0" in href:
                href = _attr_value(href)
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
                base = _attr_value(m.group(kind)) or None
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
def extract_tree(html: str | bytes, max_links: int = 10_000) -> PageLinks:
    """Title, base href and hrefs from lexbor's tree: the reference ``scan``
    is tested against (it is quadratic on deeply nested tag soup, so the
    crawl does not use it)."""
    tree = LexborHTMLParser(html)
    title = base = None
    for t in tree.tags("title"):
        title = " ".join(t.text().split()) or None
        break
    for b in tree.tags("base"):
        base = b.attributes.get("href")
        if base:
            break
    hrefs: list[str] = []
    truncated = False
    for node in tree.css("a[href], area[href]"):  # document order, as scan() gives
        href = node.attributes.get("href")
        if href:
            if len(hrefs) >= max_links:
                truncated = True
                break
            hrefs.append(href)
    return PageLinks(title, base, hrefs, truncated)


extract = scan
