"""The trap section of the test site: endless URL spaces beside legitimately deep ones.

Served under ``/traps/`` with the hostile corner (``--hostile``). Each entry of
``TRAPS`` is one endless URL space, named by the path prefix all its URLs
share; ``expected_paths()`` are the legitimate pages a correct default crawl
finds, every one of them: a shop listing of ``LISTING_PAGES`` pages (page N
links to N+1, each with its own products) and a catalogue of ``ITEMS`` items
at ``/traps/shop/item?id=N`` linked from those pages (and from each other).
The tests and ``benchmarks/bench_hostile.py`` count, from the server's log,
the requests that went into each trap.

Every answer is a function of the request's path and query: the same URL
gives the same bytes, and a "fresh" session id is a hash of the URL asking.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import random
from urllib.parse import parse_qsl, urlencode

__all__ = ["ITEMS", "LISTING_PAGES", "TRAPS", "expected_paths", "response", "trap_of"]

LISTING_PAGES = 300
ITEMS = 5000
ROOT = "/traps/"

# name -> the path prefix every URL of that endless space starts with.
TRAPS: dict[str, str] = {
    "calendar by path": "/traps/cal/",  # /traps/cal/2026/11/ -> /2026/12/
    "calendar by query": "/traps/events",  # ?day=2026-11-03 -> next day
    "pagination by path": "/traps/blog/",  # /traps/blog/page/N/ -> N+1, forever empty
    "pagination by query": "/traps/search",  # ?q=lamp&page=N -> N+1
    "session id in query": "/traps/account",  # ?sid=..., PHPSESSID=...
    "session id in path": "/traps/cart",  # ;jsessionid=...
    "unnamed session id": "/traps/profile",  # ?visit=<fresh hex>: no known name
    "growing query": "/traps/filter",  # ?tag=a -> ?tag=a&tag=b, ...
    "soft 404": "/traps/docs/",  # relative links add a segment each time
    "combination": "/traps/agenda/",  # calendar by path + session id + page number
}

_ENTRANCES = {
    "calendar by path": "/traps/cal/2026/11/",
    "calendar by query": "/traps/events?day=2026-11-03",
    "pagination by path": "/traps/blog/page/1/",
    "pagination by query": "/traps/search?q=lamp&page=1",
    "session id in query": "/traps/account?sid=0f3c9a",
    "session id in path": "/traps/cart;jsessionid=A1B2C3D4",
    "unnamed session id": "/traps/profile?visit=77aa01",
    "growing query": "/traps/filter?tag=red",
    "soft 404": "/traps/docs/",
    "combination": "/traps/agenda/2026/11/?sid=abc123&page=1",
}

_WORDS = tuple(
    "amber anchor apple arch aspen atlas autumn badge basalt basket beacon birch blossom "  # noqa: SIM905
    "bramble breeze bronze cabin canvas canyon cedar chalk cherry cinder citrus clover "
    "cobalt comet copper coral cotton crane crystal cypress dahlia delta desert dune "
    "ember falcon fern fjord flint forest frost garnet ginger glacier granite harbor "
    "hazel heather heron indigo iris ivory jade jasmine juniper kelp lagoon lantern "
    "laurel lava lemon lilac linen lotus maple marble meadow mesa mint mist moss "
    "nectar nickel oak oasis obsidian ocean olive onyx orchid otter pebble pepper "
    "pine plum poppy prairie quartz quill raven reed ridge river robin saffron sage "
    "sand sapphire sequoia shale silver slate sparrow spruce storm summit tango "
    "teal thistle thunder tide timber topaz tulip tundra umber valley velvet violet "
    "walnut willow wren yarrow zephyr zinc".split())
_KINDS = ("lamp", "chair", "table", "kettle", "blanket", "mug", "shelf", "clock", "vase",
          "rug", "stool", "bench", "mirror", "basket", "pillow", "curtain")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _html(title: str, body: str) -> bytes:
    """A page with the section's chrome around ``body`` (as real sites have)."""
    nav = ('<nav><a href="/traps/">Home</a> <a href="/traps/shop/list?page=1">Shop</a> '
           '<a href="/traps/cal/2026/11/">Calendar</a> <a href="/traps/docs/">Docs</a></nav>')
    foot = ("<footer><p>Opening hours: every day but holidays. Free delivery on orders "
            "over a modest sum. Questions? Write to us any time.</p></footer>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body>{nav}<main><h1>{title}</h1>{body}</main>{foot}</body></html>").encode()


def _ok(body: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body


def _fresh(seed: str) -> str:
    """A session id that changes with every URL asking for one."""
    return hashlib.sha1(seed.encode()).hexdigest()[:24]


def _item_range(page: int) -> range:
    return range((page - 1) * ITEMS // LISTING_PAGES, page * ITEMS // LISTING_PAGES)


def _item_name(i: int) -> tuple[str, str]:
    rng = random.Random(i * 7919 + 1)
    return f"{_words(rng, 2).title()} {rng.choice(_KINDS)}", _words(rng, 12)


def _listing(page: int) -> tuple[int, dict[str, str], bytes]:
    if not 1 <= page <= LISTING_PAGES:
        return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("No such page", "")
    items = "".join(f'<li><a href="item?id={i}">{name}</a>: {blurb}</li>'
                    for i in _item_range(page) for name, blurb in [_item_name(i)])
    nav = "".join([f'<a href="list?page={page - 1}">previous</a> ' if page > 1 else "",
                   f'<a href="list?page={page + 1}">next</a>' if page < LISTING_PAGES else ""])
    return _ok(_html(f"Shop, page {page} of {LISTING_PAGES}", f"<ul>{items}</ul><p>{nav}</p>"))


def _item(i: int) -> tuple[int, dict[str, str], bytes]:
    if not 0 <= i < ITEMS:
        return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("No such item", "")
    name, blurb = _item_name(i)
    rng = random.Random(i)
    related = [(i * 31 + 7) % ITEMS, (i + 1) % ITEMS]
    links = " ".join(f'<a href="/traps/shop/item?id={j}">{_item_name(j)[0]}</a>'
                     for j in related)
    page = i * LISTING_PAGES // ITEMS + 1
    return _ok(_html(name, f"<p>{blurb}</p><p>{_words(rng, 30)}</p><p>Related: {links}</p>"
                           f'<p><a href="/traps/shop/list?page={page}">Back to the list</a></p>'))


def _month_page(prefix: str, y: int, m: int, extra: str = "") -> bytes:
    """A month of an endless calendar: a grid of days, no events, prev/next."""
    prv = (y - 1, 12) if m == 1 else (y, m - 1)
    nxt = (y + 1, 1) if m == 12 else (y, m + 1)
    grid = "".join("<tr>" + "".join(f"<td>{d or ''}</td>" for d in week) + "</tr>"
                   for week in calendar.monthcalendar(y, m))
    name = calendar.month_name[m]
    return _html(f"Events in {name} {y}",
                 f"<table>{grid}</table><p>No events this month.</p>"
                 f'<a href="{prefix}{prv[0]}/{prv[1]:02d}/{extra}">{calendar.month_name[prv[1]]}</a> '
                 f'<a href="{prefix}{nxt[0]}/{nxt[1]:02d}/{extra}">{calendar.month_name[nxt[1]]}</a>')


def _calendar(rest: str, prefix: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    try:
        y, m = (int(x) for x in rest.strip("/").split("/")[:2])
        if not (1 <= y <= 9998 and 1 <= m <= 12):
            raise ValueError
    except ValueError:
        return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("Not found", "")
    return _ok(_month_page(prefix, y, m, extra))


def response(path: str, query: str) -> tuple[int, dict[str, str], bytes]:
    """Answer one request under ``/traps/`` (``path`` with any ``;params``)."""
    q = dict(parse_qsl(query, keep_blank_values=True))
    if path == ROOT:
        links = "".join(f'<li><a href="{u}">{name}</a></li>' for name, u in _ENTRANCES.items())
        return _ok(_html("Traps and a deep shop", f"<ul>{links}</ul>"))
    if path == "/traps/shop/list":
        return _listing(_int(q.get("page", "1")))
    if path == "/traps/shop/item":
        return _item(_int(q.get("id", "-1")))
    if path.startswith("/traps/cal/"):
        return _calendar(path.removeprefix("/traps/cal/"), "/traps/cal/")
    if path.startswith("/traps/agenda/"):
        page = _int(q.get("page", "1"))
        sid = _fresh(path + query)
        body = _calendar(path.removeprefix("/traps/agenda/"), "/traps/agenda/",
                         f"?sid={sid}&page={page}")
        if body[0] == 200:  # and a second page of the same month, and so on
            more = f'<a href="?sid={sid}&page={page + 1}">more</a>'.encode()
            return _ok(body[2].replace(b"</main>", more + b"</main>"))
        return body
    if path == "/traps/events":
        try:
            day = dt.date.fromisoformat(q.get("day", ""))
        except ValueError:
            return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("Not found", "")
        one = dt.timedelta(days=1)
        links = "".join(f'<a href="?day={d.isoformat()}">{d:%A}</a> '
                        for d in (day - one, day + one) if dt.date.min < d < dt.date.max)
        return _ok(_html(f"Events on {day:%A %d %B %Y}", f"<p>Nothing planned.</p>{links}"))
    if path.startswith("/traps/blog/page/"):
        n = _int(path.removeprefix("/traps/blog/page/").strip("/"))
        if n < 1:
            return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("Not found", "")
        return _ok(_html(f"Blog, page {n}", "<p>No more posts.</p>"
                         f'<a href="../{n + 1}/">Older posts</a>'))
    if path == "/traps/search":
        n, term = _int(q.get("page", "1")), q.get("q", "")
        return _ok(_html(f"Search: {term}", f"<p>Page {n}: nothing found for {term}.</p>"
                         f'<a href="?{urlencode({"q": term, "page": n + 1})}">next page</a>'))
    if path.startswith("/traps/account"):
        sid = _fresh(path + query)
        return _ok(_html("Your account", "<p>Welcome back.</p>"
                         f'<a href="/traps/account?sid={sid}">account</a> '
                         f'<a href="/traps/account/orders?PHPSESSID={sid}">orders</a> '
                         f'<a href="/traps/account/settings?sessionid={sid}&amp;tab=2">settings</a>'))
    if path.startswith("/traps/cart"):
        sid = _fresh(path + query).upper()
        return _ok(_html("Your cart", "<p>The cart is empty.</p>"
                         f'<a href="/traps/cart;jsessionid={sid}">cart</a> '
                         f'<a href="/traps/cart/checkout;jsessionid={sid}?step=1">checkout</a>'))
    if path == "/traps/profile":
        visit = _fresh(path + query)
        return _ok(_html("Profile", f"<p>Your visit: {visit}.</p>"
                         f'<a href="?visit={visit}">refresh</a>'))
    if path == "/traps/filter":
        tags = [v for k, v in parse_qsl(query) if k == "tag"]
        links = " ".join(f'<a href="?{query}&amp;tag={c}">{c}</a>' for c in ("blue", "green"))
        return _ok(_html("Filtered products", f"<p>Filtered by {', '.join(tags)}: "
                         f"no products match.</p><p>Add a filter: {links}</p>"))
    if path.startswith("/traps/docs/"):
        if path == "/traps/docs/":
            return _ok(_html("Documentation", "<p>Start with the introduction.</p>"
                             '<a href="intro/">Introduction</a> <a href="guide/">Guide</a>'))
        # A soft 404: any path answers 200 with the same page, whose relative
        # links (meant for /traps/docs/) add a segment each time.
        return _ok(_html("Page not found", f"<p>Sorry, {path} does not exist.</p>"
                         '<a href="intro/">Introduction</a> <a href="guide/">Guide</a> '
                         '<a href="api/">API</a>'))
    return 404, {"Content-Type": "text/html; charset=utf-8"}, _html("Not found", "")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def expected_paths() -> set[str]:
    """The legitimate pages (path and query): the section's index, every
    listing page and every item."""
    return ({ROOT} | {f"/traps/shop/list?page={p}" for p in range(1, LISTING_PAGES + 1)}
            | {f"/traps/shop/item?id={i}" for i in range(ITEMS)})


def trap_of(raw_path: str) -> str | None:
    """Which trap a request target belongs to, or None."""
    for name, prefix in TRAPS.items():
        if raw_path.startswith(prefix):
            return name
    return None
