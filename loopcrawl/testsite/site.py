"""The synthetic site: a pure, deterministic model of pages, links and answers.

Everything here is a function of ``(pages, seed)``: the same pair gives the same
bytes, so the site is the independent ground truth the crawler is checked against.
Each link is generated together with the page it leads to, so :meth:`Site.expected`
walks that model instead of parsing HTML (a bug in an HTML parser cannot hide here).

URL layout (``H`` is the Host header of the request, ``O`` is ``127.0.0.2`` on H's port)::

    /                                   home: items 0..29 and every tag page
    /cat{i % 20}/item{i}.html           item pages, 0 <= i < pages
    /tags/?name=t{k}[&page=2]           tag pages, k < 30
    /go/{i}                             301 to item i, for i % 100 == 7
    /private/p{k}.html                  k < 50, 200 but disallowed by robots.txt
    /missing/m{k}.html                  k < 20, linked but 404
    /robots.txt, /sitemap.xml
    http://O/ext/e{k}.html              k < 10, leaf pages linked only through host O

Item pages link to ``i + 1`` (so everything is reachable from ``/``) and to about 20
random items, using every form a crawler meets in the wild on every page: ``/cat5/item45.html``,
``item45.html`` and ``./item45.html`` (same directory), ``../cat5/item45.html``,
``http://H/...``, ``HTTP://H/...``, ``//H/...``, dot-segments (``/cat3/../cat5/...``,
``/cat5/./...``, ``/../cat5/...``), percent-encoded digits (``/cat%35/item%34%35.html``),
``#fragment`` suffixes, whitespace inside the attribute, ``&amp;`` in tag queries, plus
mailto:/tel:/javascript:, ``#top``, off-site hosts under the reserved ``.invalid`` TLD
(never resolvable, so a scope="any" crawl sends nothing off the machine) and one ext
page on host O. About 1 page in 50 has ``<base href="/cat{c2}/">``: its relative links
resolve against that directory. Tag pages use query-only hrefs (``?name=t3&amp;page=2``).
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ._forms import (
    _DOTS,
    _EXTRA_FORMS,
    _FMTS,
    _FORMS,
    _FRAGMENTS,
    _HEAD,
    _NT,
    _OFFSITE,
    _PADS,
    _POOL,
    _STYLE,
    _T1,
    _T2,
    _T3,
    _T4,
    _item_href,
)
from ._paths import (
    _HOST,
    _ITEM_RE,
    _OTHER,
    _TAG_RE,
    CATEGORIES,
    Link,
    Target,
    _hosts,
    _remove_dot_segments,
)
from .truth import GroundTruth

__all__ = ["Site"]

TAGS = 30
PRIVATE = 50
MISSING = 20
EXT = 10
HOME_ITEMS = 30

HTML = "text/html; charset=utf-8"
# The em dash of the titles, filled in after encoding: the rest of every page is ASCII,
# and an all-ASCII str joins and encodes several times faster than a UCS-2 one.
_DASH = "\x03"
_DASH_UTF8 = "—".encode()

_NAME_RE = re.compile(r"/(private|missing|ext)/([pme])(\d{1,2})\.html")
_GO_RE = re.compile(r"/go/(\d{1,9})")

class Site(GroundTruth):
    """A synthetic site of ``pages`` item pages, fully determined by ``(pages, seed)``.

    Nothing large is kept: pages are rendered on demand (a small LRU holds recent
    ones), so a site of a million pages costs no more memory than one of a hundred.
    """

    CACHE_SIZE = 256

    def __init__(self, pages: int = 1000, seed: int = 0) -> None:
        if pages < 1:
            raise ValueError("pages must be at least 1")
        self.pages = pages
        self.seed = seed
        self._seed_base = seed * 1_000_003
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._bfs: dict[bool, tuple[dict[tuple[Any, ...], int], list[int]]] = {}

    def __repr__(self) -> str:
        return f"Site(pages={self.pages}, seed={self.seed})"

    # ----------------------------------------------------------------- link model

    def _item_links(self, i: int, r: Callable[[], float]) -> tuple[int, list[Link],
                                                                    list[Link], list[Link]]:
        """(base category, nav links, body links, footer links) of item page ``i``.

        The draws from ``r`` are the same whether the page is rendered or only
        walked by :meth:`expected`, which is what keeps the two in agreement.
        """
        pages = self.pages
        c = i % CATEGORIES
        base = c
        if r() < 0.02:  # <base href="/cat{base}/">: relative links resolve there
            base = (c + 1 + int(r() * (CATEGORIES - 1))) % CATEGORIES

        t1, t2, t3 = int(r() * TAGS), int(r() * TAGS), int(r() * TAGS)
        nav: list[Link] = [
            ("/" if i % 2 else "../", "Home", ("h",)),
            (f"/tags/?name=t{t1}", f"Tag t{t1}", ("t", t1, 1)),
            (f"../tags/?name=t{t2}", f"Tag t{t2}", ("t", t2, 1)),
            (f"/tags/?name=t{t3}&amp;page=2", f"More in t{t3}", ("t", t3, 2)),
        ]

        forms = list(_FORMS)
        for _ in range(7 + int(r() * 5)):
            forms.append(_EXTRA_FORMS[int(r() * 15)])
        body: list[Link] = []
        same_count = (pages - 1 - base) // CATEGORIES + 1 if base < pages else 0
        for n, form in enumerate(forms):
            if form == 1 or form == 2:
                if same_count:
                    j = base + CATEGORIES * int(r() * same_count)
                else:
                    form, j = 3, int(r() * pages)
            else:
                j = int(r() * pages)
            href = _FMTS[form].format(j % CATEGORIES, j) if form < _DOTS else _item_href(form, j, r)
            x = r()
            if n == 0 or (x < 0.12 and n != 3):  # a #fragment
                href += _FRAGMENTS[int(x * 25) % 3]
            elif n == 3 or x < 0.2:  # whitespace around the URL, inside the attribute
                left, right = _PADS[int(x * 50) % 4]
                href = left + href + right
            body.append((href, f"Item {j}", ("p", j)))

        nxt = (i + 1) % pages
        nxt_href = _item_href((0, 3, 4, 6)[i % 4], nxt, r)
        body.insert(int(r() * len(body)), (nxt_href, f"Next: item {nxt}", ("p", nxt)))
        if i % 100 == 6 and i + 1 < pages:
            body.append((f"/go/{i + 1}", f"Item {i + 1} (short link)", ("g", i + 1)))
        if r() < 0.1 and pages > 7:
            j = 7 + 100 * int(r() * ((pages - 8) // 100 + 1))
            body.insert(int(r() * len(body)), (f"/go/{j}", f"Item {j} (short link)",
                                               ("g", j)))
        if r() < 0.05:
            k = int(r() * PRIVATE)
            body.insert(int(r() * len(body)), (f"/private/p{k}.html", "Members area",
                                               ("x", k)))
        if r() < 0.03:
            k = int(r() * MISSING)
            body.insert(int(r() * len(body)), (f"/missing/m{k}.html", "Archived review",
                                               ("m", k)))

        e = int(r() * EXT)
        off1 = _OFFSITE[int(r() * 2)]
        footer: list[Link] = [
            ("mailto:someone@example.com", "Contact", None),
            ("tel:+123", "Call us", None),
            ("javascript:void(0)", "Print", None),
            (f"http://{_OTHER}/ext/e{e}.html", f"Partner page {e}", ("e", e)),
            (off1[0], off1[1], ("o", off1[0])),
            (_OFFSITE[2][0], _OFFSITE[2][1], ("o", _OFFSITE[2][0])),
        ]
        if base == c:  # with a <base>, "#top" would point at /cat{base}/ (a 404)
            footer.append(("#top", "Back to top", ("s",)))
        return base, nav, body, footer

    def _home_links(self) -> list[Link]:
        """Home: the first items in mixed relative forms, then every tag page."""
        links: list[Link] = []
        for j in range(min(HOME_ITEMS, self.pages)):
            cj = j % CATEGORIES
            href = (f"cat{cj}/item{j}.html", f"./cat{cj}/item{j}.html",
                    f"/cat{cj}/item{j}.html", f"http://{_HOST}/cat{cj}/item{j}.html")[j % 4]
            links.append((href, f"Item {j}", ("p", j)))
        for k in range(TAGS):
            href = f"tags/?name=t{k}" if k % 2 else f"/tags/?name=t{k}"
            links.append((href, f"Tag t{k}", ("t", k, 1)))
        return links

    def _tag_links(self, k: int, page: int, r: Callable[[], float]) -> list[Link]:
        """A tag page: a handful of items, its sibling page, home."""
        links: list[Link] = [("../", "Home", ("h",))]
        if page == 1:
            links.append((f"?name=t{k}&amp;page=2", "Next page", ("t", k, 2)))
        else:
            links.append((f"./?name=t{k}", "Previous page", ("t", k, 1)))
            k2 = (k + 1) % TAGS
            links.append((f"?name=t{k2}", f"Tag t{k2}", ("t", k2, 1)))
        for _ in range(6):
            j = int(r() * self.pages)
            links.append((f"/cat{j % CATEGORIES}/item{j}.html", f"Item {j}", ("p", j)))
        links.append(("mailto:someone@example.com", "Contact", None))
        return links

    def _tag_rng(self, k: int, page: int) -> random.Random:
        return random.Random(f"tag/{self.seed}/{k}/{page}")

    def _edges(self, node: tuple[Any, ...]) -> list[Target]:
        """Targets linked from a page node (no text rendered)."""
        kind = node[0]
        if kind == "h":
            return [t for _, _, t in self._home_links()]
        if kind == "p":
            i = int(node[1])
            _, nav, body, footer = self._item_links(
                i, random.Random(self._seed_base + i).random)
            return [t for _, _, t in nav + body + footer]
        if kind == "t":
            k, page = int(node[1]), int(node[2])
            return [t for _, _, t in self._tag_links(k, page, self._tag_rng(k, page).random)]
        return []

    # ------------------------------------------------------------------ rendering

    def _cached(self, key: tuple[str, int], make: Callable[[], str]) -> bytes:
        """The encoded template of a page, through a small LRU.

        Locked because one Site may be served by a server thread while a test
        thread asks it for pages too; rendering itself happens outside the lock.
        """
        with self._lock:
            page = self._cache.get(key)
            if page is not None:
                self._cache.move_to_end(key)
                return page
        page = make().encode().replace(b"\x03", _DASH_UTF8)
        with self._lock:
            self._cache[key] = page
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return page

    @staticmethod
    def _anchors(links: list[Link], sep: str = " ") -> str:
        return sep.join([f'<a href="{h}">{t}</a>' for h, t, _ in links])

    @staticmethod
    def _footer(links: list[Link], r: Callable[[], float]) -> str:
        return (f"<footer>\n<p>{_T2[int(r() * _NT)]}</p>\n<p>{Site._anchors(links, ' | ')}"
                "</p>\n<p>&copy; loopcrawl test site. All pages are synthetic.</p>\n</footer>\n"
                "</body>\n</html>\n")

    def _render_item(self, i: int) -> str:
        """Item page ``i`` as a template: ``\\x01`` stands for the host, ``\\x02`` for
        the other host, ``\\x03`` for the title's em dash (see :meth:`_cached`)."""
        r = random.Random(self._seed_base + i).random
        base, nav, body, footer = self._item_links(i, r)
        c = i % CATEGORIES
        nt = _NT
        parts = [_HEAD, f"<title>Item {i} {_DASH} Category {c}</title>\n"]
        if base != c:
            parts.append(f'<base href="/cat{base}/">\n')
        parts.append(f'<meta name="description" content="{_T1[int(r() * nt)]}">\n{_STYLE}'
                     f'<body id="top">\n<header>\n<nav>{self._anchors(nav)}</nav>\n</header>\n'
                     f'<main>\n<h1>Item {i}</h1>\n<p class="lead">{_T4[int(r() * nt)]}</p>\n'
                     '<section id="description">\n<h2>Description</h2>\n')
        inline = len(body) - 8
        for href, text, _ in body[:inline]:
            parts.append(f'<p>{_T3[int(r() * nt)]} <a href="{href}">{text}</a> '
                         f"{_T3[int(r() * nt)]}</p>\n")
        parts.append('</section>\n<section id="reviews">\n<h2>Reviews</h2>\n'
                     f"<blockquote><p>{_T4[int(r() * nt)]}</p></blockquote>\n"
                     f"<blockquote><p>{_T3[int(r() * nt)]}</p></blockquote>\n"
                     f"<blockquote><p>{_T4[int(r() * nt)]}</p></blockquote>\n</section>\n"
                     '<section id="related">\n<h2>Related items</h2>\n<ul>\n')
        parts += [f'<li><a href="{href}">{text}</a>: {_T1[int(r() * nt)]}</li>\n'
                  for href, text, _ in body[inline:]]
        parts.append('</ul>\n</section>\n<section id="specs">\n<h2>Specifications</h2>\n'
                     f"<p>{_T3[int(r() * nt)]}</p>\n<table>\n"
                     f"<tr><th>Reference</th><td>LC-{i:06d}-{c:02d}</td></tr>\n"
                     f"<tr><th>Weight</th><td>{int(r() * 5000)} g</td></tr>\n"
                     f"<tr><th>Rating</th><td>{int(r() * 50) / 10} of 5</td></tr>\n"
                     f"<tr><th>In stock</th><td>{int(r() * 200)}</td></tr>\n"
                     "</table>\n</section>\n</main>\n")
        parts.append(self._footer(footer, r))
        return "".join(parts)

    def _simple_page(self, title: str, links: list[Link], r: Callable[[], float],
                     paragraphs: int) -> str:
        parts = [_HEAD, f"<title>{title}</title>\n", _STYLE,
                 f'<body id="top">\n<main>\n<h1>{title}</h1>\n']
        body = [lk for lk in links if lk[2] is not None]
        per = max(1, -(-len(body) // max(1, paragraphs)))
        for n in range(paragraphs):
            chunk = body[n * per:(n + 1) * per]
            parts.append(f"<p>{_T4[int(r() * _NT)]} {self._anchors(chunk)} "
                         f"{_T3[int(r() * _NT)]}</p>\n")
        parts.append("</main>\n")
        parts.append(self._footer([lk for lk in links if lk[2] is None], r))
        return "".join(parts)

    def _render_home(self) -> str:
        """The home page template."""
        r = random.Random(f"home/{self.seed}").random
        return self._simple_page(f"loopcrawl test site {_DASH} Home", self._home_links(), r, 15)

    def _render_tag(self, k: int, page: int) -> str:
        """Tag page ``k`` (page 1 or 2) template."""
        r = self._tag_rng(k, page).random
        links = self._tag_links(k, page, r)
        title = f"Tag t{k}" + (f" {_DASH} page 2" if page == 2 else "")
        return self._simple_page(title, links, r, 12)

    @staticmethod
    def _leaf(title: str) -> str:
        return (f"{_HEAD}<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
                f"<p>{_POOL[:400].rsplit(' ', 1)[0]}.</p>\n</body>\n</html>\n")

    def robots_txt(self, host: str) -> str:
        return (f"User-agent: *\nDisallow: /private/\nAllow: /\n\n"
                f"Sitemap: http://{host}/sitemap.xml\n")

    def sitemap_xml(self, host: str, *, static: bool = False) -> str:
        """Home, every item and (unless static) every tag page."""
        base = f"http://{host}"
        locs = [f"{base}/"]
        locs += [f"{base}/cat{j % CATEGORIES}/item{j}.html" for j in range(self.pages)]
        if not static:
            for k in range(TAGS):
                locs += [f"{base}/tags/?name=t{k}", f"{base}/tags/?name=t{k}&amp;page=2"]
        body = "".join(f"<url><loc>{u}</loc></url>\n" for u in locs)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                f"{body}</urlset>\n")

    # ------------------------------------------------------------------- serving

    def response(self, raw_path: str, host: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a raw request target and a Host header.

        The path is percent-decoded and dot-segments are removed first, as real
        servers do, so ``/cat%33/item%34%35.html`` serves ``/cat3/item45.html``.
        Queries are accepted only on tag pages: anything else with a query is a 404.
        """
        host, other = _hosts(host)
        path, _, query = raw_path.partition("?")
        if "%" in path:
            path = unquote(path)
        if "/." in path:
            path = _remove_dot_segments(path)
        template = self._template(path, unquote(query) if "%" in query else query)
        if template is None:
            if path == "/robots.txt" and not query:
                return 200, {"Content-Type": "text/plain; charset=utf-8"}, \
                    self.robots_txt(host).encode()
            if path == "/sitemap.xml" and not query:
                return 200, {"Content-Type": "application/xml"}, \
                    self.sitemap_xml(host).encode()
            m = _GO_RE.fullmatch(path)
            if m and not query and self._is_redirect(m.group(1)):
                j = int(m.group(1))
                loc = f"/cat{j % CATEGORIES}/item{j}.html"
                return 301, {"Location": loc, "Content-Type": HTML}, \
                    f'<html><body><a href="{loc}">moved</a></body></html>\n'.encode()
            return 404, {"Content-Type": HTML}, \
                b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>" \
                b"<body><h1>Not Found</h1></body></html>\n"
        body = template.replace(b"\x01", host.encode()).replace(b"\x02", other.encode())
        return 200, {"Content-Type": HTML}, body

    def _is_redirect(self, digits: str) -> bool:
        j = int(digits)
        return str(j) == digits and j < self.pages and j % 100 == 7

    def _template(self, path: str, query: str) -> bytes | None:
        """The HTML template of a 200 HTML page, or None."""
        m = _ITEM_RE.fullmatch(path)
        if m:
            c, i = m.group(1), m.group(2)
            n = int(i)
            if (query or n >= self.pages or str(n) != i or str(n % CATEGORIES) != c):
                return None
            return self._cached(("p", n), lambda: self._render_item(n))
        if path == "/":
            return None if query else self._cached(("h", 0), self._render_home)
        if path == "/tags/":
            t = _TAG_RE.fullmatch(query)
            if t is None or str(int(t.group(1))) != t.group(1) or int(t.group(1)) >= TAGS:
                return None
            k, page = int(t.group(1)), 2 if t.group(2) else 1
            return self._cached((f"t{page}", k), lambda: self._render_tag(k, page))
        m = _NAME_RE.fullmatch(path)
        if m and not query:
            area, letter, digits = m.groups()
            n = int(digits)
            limit = {"private": PRIVATE, "missing": 0, "ext": EXT}[area]
            if letter == area[0] and str(n) == digits and n < limit:
                title = ("Members only" if area == "private" else "Partner page") + f" {n}"
                return self._leaf(title).encode()
        return None

    # -------------------------------------------------------------- static files

    def write_files(self, directory: str | os.PathLike[str],
                    base: str = "http://127.0.0.1:8000") -> int:
        """Write the site as a static tree (``index.html``, ``cat3/item45.html``, ...).

        For serving the same pages from nginx in benchmarks. A file server cannot
        answer the tag pages (they differ only by query) nor the ``/go/`` redirects,
        so those are 404 there: compare with ``expected(base, static=True)``.
        Ext pages are written too; they are linked on 127.0.0.2 at ``base``'s port.
        Returns the number of files written.
        """
        root = Path(directory)
        _, host, other = self._base(base)
        count = 0

        def put(rel: str, text: str) -> None:
            nonlocal count
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            text = text.replace(_HOST, host).replace(_OTHER, other).replace(_DASH, "—")
            p.write_text(text, encoding="utf-8")
            count += 1

        put("index.html", self._render_home())
        for i in range(self.pages):
            put(f"cat{i % CATEGORIES}/item{i}.html", self._render_item(i))
        for k in range(PRIVATE):
            put(f"private/p{k}.html", self._leaf(f"Members only {k}"))
        for k in range(EXT):
            put(f"ext/e{k}.html", self._leaf(f"Partner page {k}"))
        put("robots.txt", self.robots_txt(host))
        put("sitemap.xml", self.sitemap_xml(host, static=True))
        return count
