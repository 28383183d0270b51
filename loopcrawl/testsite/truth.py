"""The test site's ground truth: what a correct crawl of it finds, walked on
the link model (``Site._edges``), never on the HTML."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

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


class GroundTruth:
    """The ground-truth half of ``Site`` (a mixin: it reads the site's model)."""

    pages: int
    _seed_base: int
    _bfs: dict[bool, tuple[dict[tuple[Any, ...], int], list[int]]]

    # The site's link model (``Site``).
    def _edges(self, node: tuple[Any, ...]) -> list[Target]:
        raise NotImplementedError

    def _template(self, path: str, query: str) -> bytes | None:
        raise NotImplementedError

    def _home_links(self) -> list[Link]:
        raise NotImplementedError

    def _item_links(self, i: int, r: Callable[[], float]
                    ) -> tuple[int, list[Link], list[Link], list[Link]]:
        raise NotImplementedError

    def _tag_links(self, k: int, page: int, r: Callable[[], float]) -> list[Link]:
        raise NotImplementedError

    def _tag_rng(self, k: int, page: int) -> random.Random:
        raise NotImplementedError

    def forbidden(self, path: str) -> bool:
        """True if robots.txt disallows ``path`` (decoded and dot-free, as served)."""
        path = unquote(path.partition("?")[0])
        return _remove_dot_segments(path).startswith("/private/")

    def _walk(self, static: bool) -> tuple[dict[tuple[Any, ...], int], list[int]]:
        """Breadth-first walk of the link model: min depth of every node reached.

        Items are kept in a flat list (``-1`` = not reached) so a big site stays cheap.
        In static mode tag pages and ``/go/`` redirects do not exist (404 leaves).
        """
        if static in self._bfs:
            return self._bfs[static]
        items = [-1] * self.pages
        other: dict[tuple[Any, ...], int] = {("h",): 0}
        queue: deque[tuple[tuple[Any, ...], int]] = deque([(("h",), 0)])
        while queue:
            node, d = queue.popleft()
            for t in self._edges(node):
                if t is None:
                    continue
                kind = t[0]
                if kind == "g":
                    if static:
                        other.setdefault(t, d + 1)
                        continue
                    t, kind = ("p", t[1]), "p"
                if kind == "p":
                    j = int(t[1])
                    if items[j] < 0:
                        items[j] = d + 1
                        queue.append((t, d + 1))
                elif kind in ("t", "h"):
                    if t not in other:
                        other[t] = d + 1
                        if not (static and kind == "t"):
                            queue.append((t, d + 1))
                elif kind in ("m", "e"):
                    other.setdefault(t, d + 1)
                # "x" private (robots), "s" self, "o" off-site: not followed
        self._bfs[static] = (other, items)
        return other, items

    @staticmethod
    def _base(base: str) -> tuple[str, str, str]:
        base = base.rstrip("/")
        host, other = _hosts(urlsplit(base).netloc)
        return base, host, other

    def expected(self, base: str = "http://127.0.0.1:8000", *, depth: int | None = None,
                 scope: Literal["host", "any"] = "host", static: bool = False
                 ) -> dict[str, int]:
        """Canonical URL -> minimal link depth of every 200 HTML page a correct crawl
        from ``base + "/"`` reaches.

        Robots.txt is obeyed (no /private/), 404s and redirect sources are left out
        (the page a redirect leads to is in, at the depth of the link to it). The
        sitemap is not used. ``scope="any"`` adds the ext pages on 127.0.0.2;
        off-site hosts never answer. ``static=True`` models :meth:`write_files`
        served by a plain file server: no tag pages, no redirects.
        """
        if scope not in ("host", "any"):
            raise ValueError(f"scope must be 'host' or 'any', not {scope!r}")
        base, _, other = self._base(base)
        nodes, items = self._walk(static)
        out: dict[str, int] = {}
        for node, d in nodes.items():
            kind = node[0]
            if kind == "h":
                out[base + "/"] = d
            elif kind == "t" and not static:
                out[self._tag_url(base, node)] = d
            elif kind == "e" and scope == "any":
                out[f"http://{other}/ext/e{node[1]}.html"] = d
        for j, d in enumerate(items):
            if d >= 0:
                out[f"{base}/cat{j % CATEGORIES}/item{j}.html"] = d
        if depth is not None:
            out = {u: d for u, d in out.items() if d <= depth}
        return out

    @staticmethod
    def _tag_url(base: str, node: tuple[Any, ...]) -> str:
        return f"{base}/tags/?name=t{node[1]}" + ("&page=2" if node[2] == 2 else "")

    def broken_urls(self, base: str = "http://127.0.0.1:8000", *, depth: int | None = None,
                    static: bool = False) -> set[str]:
        """The linked URLs on ``base``'s host that a correct crawl records as 404."""
        base, _, _ = self._base(base)
        nodes, _ = self._walk(static)
        out: set[str] = set()
        for node, d in nodes.items():
            if depth is not None and d > depth:
                continue
            if node[0] == "m":
                out.add(f"{base}/missing/m{node[1]}.html")
            elif static and node[0] == "t":
                out.add(self._tag_url(base, node))
            elif static and node[0] == "g":
                out.add(f"{base}/go/{node[1]}")
        return out

    def redirect_sources(self) -> list[int]:
        """Item numbers ``j`` for which ``/go/{j}`` answers 301."""
        return list(range(7, self.pages, 100))

    def links(self, raw_path: str, host: str = "127.0.0.1:8000") -> list[tuple[str, str | None]]:
        """(href as written in the HTML, canonical absolute URL it leads to) for each
        ``<a>`` of a page; None for mailto:/tel:/javascript:. For debugging and tests."""
        host, other = _hosts(host)
        path, _, query = raw_path.partition("?")
        path = _remove_dot_segments(unquote(path))
        m = _ITEM_RE.fullmatch(path)
        if self._template(path, query) is None:
            return []
        base = f"http://{host}"
        if path == "/":
            links = self._home_links()
            self_url = base + "/"
        elif m:
            i = int(m.group(2))
            _, nav, body, footer = self._item_links(
                i, random.Random(self._seed_base + i).random)
            links = nav + body + footer
            self_url = f"{base}{path}"
        elif path == "/tags/":
            tag = _TAG_RE.fullmatch(query)
            assert tag is not None
            k, page = int(tag.group(1)), 2 if tag.group(2) else 1
            links = self._tag_links(k, page, self._tag_rng(k, page).random)
            self_url = f"{base}/tags/?{query}"
        else:
            return []
        out: list[tuple[str, str | None]] = []
        for href, _, t in links:
            href = href.replace(_HOST, host).replace(_OTHER, other)
            url: str | None
            if t is None:
                url = None
            elif t[0] == "s":
                url = self_url
            elif t[0] == "o":
                url = str(t[1])
            else:
                url = self._node_url(base, other, t)
            out.append((href, url))
        return out

    @staticmethod
    def _node_url(base: str, other: str, t: tuple[Any, ...]) -> str:
        kind = t[0]
        if kind == "h":
            return base + "/"
        if kind == "p":
            j = int(t[1])
            return f"{base}/cat{j % CATEGORIES}/item{j}.html"
        if kind == "t":
            return GroundTruth._tag_url(base, t)
        if kind == "g":
            return f"{base}/go/{t[1]}"
        if kind == "x":
            return f"{base}/private/p{t[1]}.html"
        if kind == "m":
            return f"{base}/missing/m{t[1]}.html"
        return f"http://{other}/ext/e{t[1]}.html"
