"""Title and link extraction from HTML, with selectolax (lexbor).

Only what the crawl needs is read from the tree: ``<title>``, ``<base href>``
and the ``href`` of ``<a>``/``<area>``. Resolution is left to ``urls``.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

__all__ = ["PageLinks", "extract"]


@dataclass(slots=True)
class PageLinks:
    title: str | None
    base_href: str | None
    hrefs: list[str]
    truncated: bool = False  # more links than the cap; the rest were ignored


def extract(html: str | bytes, max_links: int = 10_000) -> PageLinks:
    """Parse ``html`` once and return its title, base href and raw hrefs."""
    tree = LexborHTMLParser(html)
    head = tree.head
    title = base = None
    if head is not None:
        t = head.css_first("title")
        if t is not None:
            title = " ".join(t.text().split()) or None
        b = head.css_first("base[href]")
        if b is not None:
            base = b.attributes.get("href")
    if title is None:
        t = tree.css_first("title")
        if t is not None:
            title = " ".join(t.text().split()) or None
    hrefs: list[str] = []
    truncated = False
    for node in tree.css("a[href], area[href]"):
        if len(hrefs) >= max_links:
            truncated = True
            break
        href = node.attributes.get("href")
        if href:
            hrefs.append(href)
    return PageLinks(title, base, hrefs, truncated)
