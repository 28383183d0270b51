"""Sitemaps (sitemaps.org 0.9): urlsets, indexes, gzipped files.

Parsed with lxml set up for hostile input: no DTD loading, no entity
expansion (so neither XXE nor "billion laughs"), no network, no huge trees,
and a cap on the inflated size of a gzipped sitemap (50 MB, the protocol's
own limit).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from lxml import etree

__all__ = ["MAX_SITEMAP_SIZE", "Sitemap", "parse_sitemap"]

MAX_SITEMAP_SIZE = 50 * 1024 * 1024  # bytes, uncompressed (sitemaps.org)
MAX_SITEMAP_URLS = 50_000  # per file (sitemaps.org)


@dataclass(slots=True)
class Sitemap:
    urls: list[str] = field(default_factory=list)  # pages (from a <urlset>)
    sitemaps: list[str] = field(default_factory=list)  # children (from a <sitemapindex>)
    error: str | None = None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        dtd_validation=False, recover=True, remove_comments=True, remove_pis=True,
    )


def parse_sitemap(body: bytes) -> Sitemap:
    """The URLs a sitemap lists; never raises on hostile bytes."""
    if body[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(wbits=31)
        try:
            body = d.decompress(body, MAX_SITEMAP_SIZE)
        except zlib.error as e:
            return Sitemap(error=f"bad gzip: {e}")
        if d.unconsumed_tail:
            return Sitemap(error=f"gzipped sitemap inflates past {MAX_SITEMAP_SIZE} bytes")
    try:
        root = etree.fromstring(body, _parser())
    except (etree.XMLSyntaxError, ValueError) as e:
        return Sitemap(error=f"not XML: {e}")
    if root is None:
        return Sitemap(error="empty document")
    out = Sitemap()
    kind = etree.QName(root).localname if isinstance(root.tag, str) else ""
    target = out.sitemaps if kind == "sitemapindex" else out.urls
    if kind not in ("urlset", "sitemapindex"):
        out.error = f"not a sitemap (root element {kind!r})"
        return out
    for loc in root.iter("{*}loc"):
        text = (loc.text or "").strip()
        if text:
            target.append(text)
            if len(target) >= MAX_SITEMAP_URLS:
                break
    return out
