"""A book shop under ``/shop/``: what spiders are written against and checked by.

A pure, deterministic model, like :class:`~loopcrawl.testsite.site.Site`: the
catalogue is a function of ``(books, seed)``, the pages are rendered from it,
and the ground truth (``books``, ``search()``, ``legacy_titles()``) comes from
the model, never from parsing the HTML. Stdlib only.

URL layout (every path starts with ``/shop/``)::

    /shop/                               all books, page 1, and the category list
    /shop/page-{n}.html                  all books, page n (20 a page)
    /shop/category/{slug}/page-{n}.html  one category, page n (page-1 is its index)
    /shop/book/{id}/                     a book: title, price, stock, rating,
                                         description, product table, reviews
    /shop/search                         GET: the search form; POST: the results
    /shop/legacy/cp1251.html             new arrivals in windows-1251 (<meta> only)
    /shop/legacy/gbk.html                new arrivals in GBK (<meta charset>)
    /shop/api/books?page=n               the catalogue as JSON, 50 a page
    /shop/login, /shop/account           a session kept in a cookie (POST login → 303)
    /shop/admin/                         HTTP basic auth (admin / secret)
    /shop/echo                           what the request carried, as JSON
    /shop/redirect/{301,302,303,307,308} to /shop/echo?from={status} (any method)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ADMIN", "PER_PAGE", "USER", "Book", "Review", "Shop", "default_shop"]

PER_PAGE = 20
API_PER_PAGE = 50
USER = ("reader", "open sesame")  # the login form's account
ADMIN = ("admin", "secret")  # basic auth of /shop/admin/
RATINGS = ("One", "Two", "Three", "Four", "Five")
CATEGORIES = ("Travel", "Mystery", "Historical Fiction", "Science", "Poetry", "Philosophy",
              "Romance", "Fantasy", "Humor", "Art & Design", "Business", "Science Fiction")

_WORDS = ["silent", "river", "night", "garden", "winter", "stone", "city", "light", "shadow", "empire", "mountain", "ocean", "secret", "letter", "glass", "iron", "summer", "forest", "crown", "storm", "paper", "island", "orchard", "lantern", "harbor", "clock", "mirror", "voyage", "atlas", "compass", "meadow", "cathedral", "engine"]
_ODD = ("Café", "Naïve", "Über", "Señor", "Déjà", "Crème")
_NAMES = ("Ada", "Boris", "Chen", "Dora", "Emil", "Farah", "Gus", "Hana", "Ivo", "Jun")
_CYRILLIC = ("тихий дон", "белая гвардия", "мастер", "снежная", "книга", "весна", "река",
             "ночь", "город", "сад", "письмо", "остров")
_CHINESE = ("春", "夜", "山", "水", "书", "城", "花", "月", "风", "海", "梦", "路")

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Review:
    author: str
    stars: int  # 1..5
    text: str


@dataclass(frozen=True, slots=True)
class Book:
    """One book of the catalogue: the ground truth for what a spider scrapes."""

    id: int
    title: str
    category: str
    price: str  # pounds, two decimals: "51.77"
    stock: int  # 0: out of stock
    rating: int  # 1..5
    upc: str
    description: str
    reviews: tuple[Review, ...] = field(default=())

    @property
    def path(self) -> str:
        return f"/shop/book/{self.id}/"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


class Shop:
    """The catalogue of ``books`` books and its pages."""

    def __init__(self, books: int = 300, seed: int = 0) -> None:
        r = random.Random(f"shop-{seed}")
        self.seed = seed
        self.books: list[Book] = [self._make(i, r) for i in range(1, books + 1)]
        self.categories: list[tuple[str, str]] = [(slug(c), c) for c in CATEGORIES]
        self._by_category: dict[str, list[Book]] = {s: [] for s, _ in self.categories}
        for b in self.books:
            self._by_category[slug(b.category)].append(b)
        self.token = hashlib.sha1(f"token-{seed}".encode()).hexdigest()[:16]
        self._session = hashlib.sha1(f"session-{seed}".encode()).hexdigest()[:24]
        self._legacy = {
            "cp1251": [f"{r.choice(_CYRILLIC).capitalize()} {r.choice(_CYRILLIC)} №{k}"
                       for k in range(1, 13)],
            "gbk": [f"{''.join(r.sample(_CHINESE, 3))}之书 第{k}卷" for k in range(1, 13)],
        }

    @staticmethod
    def _make(i: int, r: random.Random) -> Book:
        words = [r.choice(_WORDS) for _ in range(r.randint(1, 9))]
        if r.random() < 0.15:
            words.insert(r.randrange(len(words) + 1), r.choice(_ODD))
        title = " ".join(w.capitalize() for w in words)
        if r.random() < 0.1:
            title += " & " + r.choice(_WORDS).capitalize()
        if r.random() < 0.05:
            title = f'"{title}"'
        title = f"{title} {i}"  # titles are unique
        reviews = tuple(
            Review(r.choice(_NAMES), r.randint(1, 5),
                   " ".join(r.choice(_WORDS) for _ in range(r.randint(4, 12))).capitalize() + ".")
            for _ in range(r.choice((0, 0, 1, 2, 3))))
        sentences = [" ".join(r.choice(_WORDS) for _ in range(r.randint(6, 14))).capitalize()
                     + "." for _ in range(r.randint(2, 5))]
        return Book(
            id=i,
            title=title,
            category=CATEGORIES[r.randrange(len(CATEGORIES))],
            price=f"{r.randint(500, 5999) / 100:.2f}",
            stock=0 if r.random() < 0.2 else r.randint(1, 22),
            rating=r.randint(1, 5),
            upc=f"{r.getrandbits(64):016x}",
            description=" ".join(sentences),
            reviews=reviews,
        )

    # -- ground truth ---------------------------------------------------------
    def book(self, book_id: int) -> Book:
        return self.books[book_id - 1]

    def in_category(self, name_or_slug: str) -> list[Book]:
        return list(self._by_category.get(slug(name_or_slug), []))

    def search(self, q: str, category: str = "") -> list[Book]:
        """What ``POST /shop/search`` lists: titles containing every word of
        ``q`` (case-insensitive), in the category (slug) if one is given."""
        words = q.lower().split()
        pool = self._by_category.get(category, []) if category else self.books
        return [b for b in pool if all(w in b.title.lower() for w in words)]

    def legacy_titles(self, encoding: str) -> list[str]:
        """The titles on ``/shop/legacy/{cp1251,gbk}.html``, as text."""
        return list(self._legacy[encoding])

    def listing_pages(self, category: str | None = None) -> int:
        n = len(self.in_category(category) if category else self.books)
        return max(1, -(-n // PER_PAGE))

    # -- serving -------------------------------------------------------------
    def response(self, method: str, raw_path: str, headers: Mapping[str, str],
                 body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request to a ``/shop/`` path."""
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), dict(parse_qsl(parts.query))
        if path == "/shop/echo":  # any method
            return self._echo(method, raw_path, headers, body)
        if method not in ("GET", "HEAD", "POST"):
            return 405, {"Allow": "GET, HEAD, POST"}, b""
        if method == "POST" and path not in ("/shop/search", "/shop/login", "/shop/echo") and (
                not path.startswith("/shop/redirect/")):
            return 405, {"Allow": "GET, HEAD"}, b""
        if path in ("/shop", "/shop/"):
            return self._page(self._listing(None, 1))
        if m := re.fullmatch(r"/shop/page-(\d+)\.html", path):
            return self._page(self._listing(None, int(m.group(1))))
        if m := re.fullmatch(r"/shop/category/([a-z0-9-]+)/(?:index|page-(\d+))\.html", path):
            return self._page(self._listing(m.group(1), int(m.group(2) or 1)))
        if m := re.fullmatch(r"/shop/book/(\d+)/", path):
            i = int(m.group(1))
            return self._page(self._detail(self.book(i)) if 1 <= i <= len(self.books) else None)
        if path == "/shop/search":
            return self._search(method, headers, body)
        if m := re.fullmatch(r"/shop/legacy/(cp1251|gbk)\.html", path):
            return self._legacy_page(m.group(1))
        if path == "/shop/api/books":
            return self._api(query.get("page", "1"))
        if path in ("/shop/login", "/shop/account"):
            return self._session_page(path, method, headers, body)
        if path == "/shop/admin/":
            return self._admin(headers)
        if m := re.fullmatch(r"/shop/redirect/(30[12378])", path):
            return int(m.group(1)), {"Location": f"/shop/echo?from={m.group(1)}",
                                     "Content-Type": HTML}, b""
        return self._page(None)

    @staticmethod
    def _page(text: str | None, status: int = 200) -> tuple[int, dict[str, str], bytes]:
        if text is None:
            return 404, {"Content-Type": HTML}, b"<html><body><h1>Not found</h1></body></html>"
        return status, {"Content-Type": HTML}, text.encode()

    @staticmethod
    def _layout(title: str, content: str, crumbs: list[tuple[str, str]] | None = None) -> str:
        trail = "".join(f'<li><a href="{h}">{_e(t)}</a></li>' for h, t in crumbs or [])
        return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
                f"<title>{_e(title)} | Loop Books</title></head><body>"
                f'<header><a class="brand" href="/shop/">Loop Books</a> '
                f'<a href="/shop/search">Search</a> <a href="/shop/account">Account</a></header>'
                f'<ul class="breadcrumb">{trail}</ul>{content}</body></html>')

    def _pod(self, b: Book, up: str = "") -> str:
        """A book in a listing; ``up`` leads from the page's directory to /shop/."""
        short = b.title if len(b.title) <= 40 else b.title[:37] + "..."
        stock = "In stock" if b.stock else "Out of stock"
        return (f'<article class="product_pod">'
                f'<p class="star-rating {RATINGS[b.rating - 1]}"></p>'
                f'<h3><a href="{up}book/{b.id}/" title="{_e(b.title)}">{_e(short)}</a></h3>'
                f'<div class="product_price"><p class="price_color">£{b.price}</p>'
                f'<p class="instock availability">{stock}</p></div></article>')

    def _listing(self, cat: str | None, page: int) -> str | None:
        books = self.books if cat is None else self._by_category.get(cat)
        if books is None:
            return None
        pages = max(1, -(-len(books) // PER_PAGE))
        if not 1 <= page <= pages:
            return None
        chunk = books[(page - 1) * PER_PAGE: page * PER_PAGE]
        # Links are relative to the page's directory, as in a real shop.
        name = "All products" if cat is None else dict(self.categories)[cat]
        pager = []
        if page > 1:
            prev = "index.html" if cat is not None and page == 2 else f"page-{page - 1}.html"
            if cat is None and page == 2:
                prev = "./"
            pager.append(f'<li class="previous"><a href="{prev}">previous</a></li>')
        pager.append(f'<li class="current">Page {page} of {pages}</li>')
        if page < pages:
            pager.append(f'<li class="next"><a href="page-{page + 1}.html">next</a></li>')
        nav = "".join(f'<li><a href="/shop/category/{s}/index.html">{_e(n)}</a></li>'
                      for s, n in self.categories)
        pods = "".join(self._pod(b, "" if cat is None else "../../") for b in chunk)
        content = (f'<aside><ul class="categories">{nav}</ul></aside>'
                   f'<section><h1>{_e(name)}</h1>'
                   f'<form class="results"><strong>{len(books)}</strong> results</form>'
                   f'<ol class="row">{pods}</ol><ul class="pager">{"".join(pager)}</ul></section>')
        return self._layout(name, content, [("/shop/", "Home")])

    def _detail(self, b: Book) -> str:
        stock = f"In stock ({b.stock} available)" if b.stock else "Out of stock"
        rows = [("UPC", b.upc), ("Product Type", "Books"), ("Price (excl. tax)", f"£{b.price}"),
                ("Availability", stock), ("Number of reviews", str(len(b.reviews)))]
        table = "".join(f"<tr><th>{k}</th><td>{_e(v)}</td></tr>" for k, v in rows)
        reviews = "".join(
            f'<article class="review"><span class="author">{_e(rv.author)}</span>'
            f'<span class="stars" data-stars="{rv.stars}">{"★" * rv.stars}</span>'
            f'<p class="text">{_e(rv.text)}</p></article>' for rv in b.reviews)
        cat = slug(b.category)
        content = (
            f'<article class="product_page"><div class="product_main">'
            f"<h1>{_e(b.title)}</h1>"
            f'<p class="price_color">£{b.price}</p>'
            f'<p class="instock availability">\n    {stock}\n</p>'
            f'<p class="star-rating {RATINGS[b.rating - 1]}"></p></div>'
            f'<div id="product_description"><h2>Product Description</h2></div>'
            f"<p>{_e(b.description)}</p>"
            f'<table class="table table-striped">{table}</table>'
            f'<section id="reviews"><h2>Reviews</h2>{reviews or "<p>No reviews yet.</p>"}'
            f"</section></article>")
        return self._layout(b.title, content, [
            ("/shop/", "Home"), (f"/shop/category/{cat}/index.html", b.category),
            (b.path, b.title)])

    def _search(self, method: str, headers: Mapping[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        options = "".join(f'<option value="{s}">{_e(n)}</option>' for s, n in self.categories)
        form = (f'<form id="search" action="/shop/search" method="post">'
                f'<input type="hidden" name="token" value="{self.token}">'
                f'<input type="text" name="q" value="">'
                f'<select name="category"><option value="" selected>All</option>{options}</select>'
                f'<input type="submit" name="go" value="Search"></form>')
        if method != "POST":
            return self._page(self._layout("Search", form, [("/shop/", "Home")]))
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if fields.get("token") != self.token:
            return self._page(self._layout("Search", "<p class=error>Bad token</p>"), 403)
        found = self.search(fields.get("q", ""), fields.get("category", ""))
        pods = "".join(self._pod(b) for b in found[:100])
        content = (f'<h1>Results for “{_e(fields.get("q", ""))}”</h1>'
                   f'<p class="count">{len(found)}</p><ol class="row">{pods}</ol>')
        return self._page(self._layout("Search results", content, [("/shop/", "Home")]))

    def _legacy_page(self, enc: str) -> tuple[int, dict[str, str], bytes]:
        titles = self._legacy[enc]
        items = "".join(f'<li class="new"><a href="/shop/book/{k}/">{_e(t)}</a></li>'
                        for k, t in enumerate(titles, 1))
        if enc == "cp1251":
            head = ('<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
                    "<title>Новые поступления</title>")
            text = f"<html><head>{head}</head><body><h1>Новинки</h1><ul>{items}</ul></body></html>"
            # No charset in the HTTP header: only the page says what it is.
            return 200, {"Content-Type": "text/html"}, text.encode("cp1251")
        text = (f'<html><head><meta charset="gbk"><title>新书</title></head>'
                f"<body><h1>新书上架</h1><ul>{items}</ul></body></html>")
        return 200, {"Content-Type": "text/html"}, text.encode("gbk")

    def _api(self, page: str) -> tuple[int, dict[str, str], bytes]:
        n = int(page) if page.isdigit() else 0
        pages = max(1, -(-len(self.books) // API_PER_PAGE))
        if not 1 <= n <= pages:
            return 404, {"Content-Type": "application/json"}, b'{"error": "no such page"}'
        chunk = self.books[(n - 1) * API_PER_PAGE: n * API_PER_PAGE]
        data = {"page": n, "pages": pages,
                "next": f"/shop/api/books?page={n + 1}" if n < pages else None,
                "books": [{"id": b.id, "title": b.title, "price": b.price, "url": b.path}
                          for b in chunk]}
        return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()

    def _session_page(self, path: str, method: str, headers: Mapping[str, str],
                      body: bytes) -> tuple[int, dict[str, str], bytes]:
        cookies = dict(kv.strip().split("=", 1) for kv in headers.get("Cookie", "").split(";")
                       if "=" in kv)
        logged_in = cookies.get("session") == self._session
        if path == "/shop/account":
            if not logged_in:
                return 302, {"Location": "/shop/login", "Content-Type": HTML}, b""
            content = f'<h1>Your account</h1><p class="welcome">Welcome back, {USER[0]}!</p>'
            return self._page(self._layout("Account", content))
        if method == "POST":
            fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if (fields.get("username"), fields.get("password")) == USER and (
                    fields.get("csrf") == self.token):
                return 303, {"Location": "/shop/account", "Content-Type": HTML,
                             "Set-Cookie": f"session={self._session}; Path=/shop; HttpOnly"}, b""
            return self._page(self._layout("Log in", "<p class=error>Wrong password</p>"), 403)
        form = (f'<form id="login" action="/shop/login" method="post">'
                f'<input type="hidden" name="csrf" value="{self.token}">'
                f'<input name="username"><input type="password" name="password">'
                f'<button type="submit">Log in</button></form>')
        return self._page(self._layout("Log in", form))

    @staticmethod
    def _admin(headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        want = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        if headers.get("Authorization") != want:
            return 401, {"WWW-Authenticate": 'Basic realm="shop admin"',
                         "Content-Type": HTML}, b"<h1>Unauthorized</h1>"
        return 200, {"Content-Type": HTML}, b"<h1>Stock report</h1><p class=ok>all good</p>"

    @staticmethod
    def _echo(method: str, raw_path: str, headers: Mapping[str, str],
              body: bytes) -> tuple[int, dict[str, str], bytes]:
        data = {"method": method, "path": raw_path, "headers": dict(headers),
                "body": body.decode("utf-8", "replace")}
        return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()


@functools.cache
def default_shop() -> Shop:
    """The shop the test site serves: ``Shop()``, built once per process."""
    return Shop()
