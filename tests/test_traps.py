"""Crawler traps with default settings: each endless URL space costs a bounded
number of requests, legitimately deep content is crawled whole, and the crawl
ends by itself (the test site's ``/traps/`` section, ``testsite/traps.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from loopcrawl.core.traps import TrapGuard, compare, family, link_hashes, sketch
from loopcrawl.settings import Settings
from loopcrawl.testsite import ServerThread, Site
from loopcrawl.testsite import traps as section
from loopcrawl.urls import Resolver, canonicalize

from .conftest import PageServer
from .helpers import run

TRAP_BUDGET = 100  # requests into one endless space, at most (issue 15)


def test_default_crawl_bounds_every_trap_and_finds_every_legitimate_page(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ServerThread(Site(10), hostile=True) as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "loopcrawl", "crawl", srv.base_url + section.ROOT,
             "-o", str(out), "--quiet"], capture_output=True, text=True, timeout=240)
        log = list(srv.server.log)
    assert proc.returncode == 0, proc.stderr[-2000:]  # it ended by itself, and well
    per_trap = Counter(section.trap_of(e.raw_path) for e in log)
    for name in section.TRAPS:
        assert per_trap[name] <= TRAP_BUDGET, (name, per_trap)
    # Each trap was entered (so the bound above is the defences' doing) and
    # the ones that need the similarity budget reached it.
    assert all(per_trap[name] >= 2 for name in section.TRAPS), per_trap
    records = [json.loads(line) for line in out.read_text().splitlines()]
    found = {r["url"].removeprefix(srv.base_url) for r in records if r.get("status") == 200}
    missing = section.expected_paths() - found
    assert not missing, sorted(missing)[:10]


def test_traps_under_their_own_first_segments_each_stay_under_the_budget() -> None:
    """Similar pages are counted per host and first path segment: traps that
    do not share one each get their own budget, and each stays within it."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        prefix = "/" + path.split("/")[1]
        status, headers, body = section.response("/traps" + path, request.query_string)
        body = body.replace(b"/traps/", b"/")  # the section's links, moved to the root
        if prefix == "/" and path == "/":
            status, headers, body = section.response(section.ROOT, "")
            body = body.replace(b"/traps/", b"/")
        return web.Response(status=status, body=body, headers=headers)

    with PageServer(handler=handler) as server:
        recs, stats = run(server.url + "/", obey_robots=False)
        per_trap = Counter(section.trap_of("/traps" + p) for p in server.paths())
    for name in section.TRAPS:
        assert 2 <= per_trap[name] <= TRAP_BUDGET, (name, per_trap)
    found = {r.url.removeprefix(server.url) for r in recs if r.status == 200}
    want = {p.replace("/traps/", "/", 1) for p in section.expected_paths()}
    assert want <= found
    assert stats.traps["max_similar_pages"] > 0
    assert stats.skipped["trap_similar_pages"] == stats.traps["max_similar_pages"]


def _chain(n: int) -> PageServer:
    """Pages /c?n=0, 1, 2, ... each the same but for its number: an endless chain."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        i = int(request.query.get("n", "0"))
        body = (f"<html><head><title>Day {i}</title></head><body><h1>Day {i}</h1>"
                f"<p>Nothing planned for this day.</p><a href='/c?n={i + 1}'>next</a>"
                "</body></html>")
        return web.Response(body=body.encode(), content_type="text/html")

    return PageServer(handler=handler)


@pytest.mark.parametrize("limit", [5, 6])
def test_max_similar_pages_boundary(limit: int) -> None:
    """A chain costs the budget plus three pages: the seed, and the two pages it
    takes to see that pages look alike (the first has no parent to compare
    with, the second's parent was not read for words)."""
    with _chain(limit) as server:
        _, stats = run(server.url + "/c?n=0", obey_robots=False, max_similar_pages=limit)
        assert len(server.paths()) == limit + 3
    assert stats.traps == {"max_similar_pages": 1}
    assert stats.skipped["trap_similar_pages"] == 1


def test_each_family_of_similar_pages_has_a_budget_of_its_own() -> None:
    """Two endless chains under their own first segments: each costs what one
    chain alone costs (a budget per family, not one for the crawl)."""

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/":
            return web.Response(text="<a href='/a/c?n=0'>a</a><a href='/b/c?n=0'>b</a>",
                                content_type="text/html")
        i = int(request.query.get("n", "0"))
        body = (f"<html><head><title>Day {i}</title></head><body><h1>Day {i}</h1>"
                f"<p>Nothing planned for this day.</p><a href='c?n={i + 1}'>next</a>"
                "</body></html>")
        return web.Response(body=body.encode(), content_type="text/html")

    with PageServer(handler=handler) as server:
        _, stats = run(server.url + "/", obey_robots=False, max_similar_pages=5)
        per_chain = Counter(p.split("/")[1] for p in server.paths() if p != "/")
    assert per_chain == {"a": 5 + 2, "b": 5 + 2}
    assert stats.traps == {"max_similar_pages": 2}


def test_max_similar_pages_can_be_raised() -> None:
    with _chain(0) as server:
        run(server.url + "/c?n=0", obey_robots=False, max_similar_pages=300)
        assert len(server.paths()) == 303


def test_a_listing_with_new_content_on_every_page_is_not_similar() -> None:
    guard = TrapGuard(Settings())
    prev = None
    for page in range(1, 60):  # a chain of 59 listing pages, none of them similar
        _, _, body = section.response("/traps/shop/list", f"page={page}")
        url = f"http://h/traps/shop/list?page={page}"
        links = [f"http://h/traps/shop/item?id={i}" for i in section._item_range(page)]
        assert guard.page(url, prev, body, [*links, url]) == ""
        prev = url
    # ... while the months of a calendar are, from the third on.
    prev = None
    fams = []
    for m in range(1, 13):
        _, _, body = section.response(f"/traps/cal/2026/{m:02d}/", "")
        url = f"http://h/traps/cal/2026/{m:02d}/"
        fams.append(guard.page(url, prev, body, [url, "http://h/traps/"]))
        prev = url
    assert fams[:2] == ["", ""] and set(fams[2:]) == {"h/traps"}


def test_a_page_is_compared_by_the_fingerprints_it_is_given() -> None:
    """``TrapGuard.page`` takes its links' fingerprints from the link follower
    (its seen check's): the ones given are what a child is compared with."""
    from loopcrawl.urls import fingerprints

    links = [f"http://h/traps/cal/{i}" for i in range(20)]
    for fps, fam in ((None, "h/traps"), (fingerprints(links), "h/traps"),
                     (list(range(20)), "")):
        guard = TrapGuard(Settings())
        urls = ["http://h/traps/cal/a", "http://h/traps/cal/b", "http://h/traps/cal/c"]
        _, _, body = section.response("/traps/cal/2026/01/", "")
        guard.page(urls[0], None, body, links)
        guard.page(urls[1], urls[0], body, links, fps)  # given: the parent's are computed
        assert guard.page(urls[2], urls[1], body, links) == fam


def _new_words(child: bytes, parent: bytes) -> int:
    return (sketch(child) & ~sketch(parent)).bit_count()


def _bits(*words: bytes) -> set[int]:
    """The bits of a 4096-bit sketch ``words`` set: two words may share one
    (hash() is seeded per process), so counts are of bits, not words."""
    return {hash(w) & 4095 for w in words}


def test_sketch_counts_new_words_but_not_month_names_or_case() -> None:
    a = b"<p>Events on Monday 3 November 2026</p><a href='?d=2026-11-04'>next</a>"
    b = b"<p>Events on tuesday 4 December 2026</p><a href='?d=2026-11-05'>next</a>"
    old = _bits(b"p", b"events", b"on", b"3", b"2026", b"a", b"href", b"d", b"2026-11-04", b"next")
    # "4" and the new href; the names are dropped
    assert _new_words(b, a) == len(_bits(b"4", b"2026-11-05") - old)
    assert _new_words(b"<p>red lamp</p>", b"<p>blue chair</p>") == len(
        _bits(b"red", b"lamp") - _bits(b"p", b"blue", b"chair"))



def test_a_sketch_is_a_4096_bit_set_of_its_words() -> None:
    """One bit a word, at ``hash(word) & 4095``: all 4,096 positions in use
    (a narrower set would find more pages alike)."""
    words = [f"w{i}".encode() for i in range(300)]
    assert sketch(b" ".join(words)) == sum(1 << b for b in _bits(*words))

def test_a_listing_whose_items_differ_only_in_numbers_is_not_similar() -> None:
    """Twelve items a page, named by number only: twelve new numbers and
    twelve new links a page, not the two or three of a calendar's next month."""
    guard = TrapGuard(Settings())

    def page(n: int) -> bytes:
        items = "".join(f'<li><a href="/item?id={i}">Item {i}</a></li>'
                        for i in range(n * 12, n * 12 + 12))
        return (f"<html><title>List page {n}</title><ul>{items}</ul>"
                f'<a href="/list?page={n + 1}">next</a></html>').encode()

    prev = None
    for n in range(1, 40):
        url = f"http://h/list?page={n}"
        links = [f"http://h/item?id={i}" for i in range(n * 12, n * 12 + 12)]
        assert guard.page(url, prev, page(n), [*links, f"http://h/list?page={n + 1}"]) == ""
        prev = url


def test_family_is_host_and_first_segment() -> None:
    assert family("http://h:8/cal/2026/11/") == "h:8/cal"
    assert family("http://h/2026/11/") == "h/0"
    assert family("http://h/?page=3") == "h/"
    assert family("http://h/search?q=x") == "h/search"
    assert family("http://h/page12x34/5") == "h/page0x0"  # a digit anywhere: each run is 0
    assert family("http://h/a?u=?b") == "h/a"  # the first '?' starts the query


@pytest.mark.parametrize(("url", "canonical"), [
    ("http://h/cart;jsessionid=A1B2C3?step=1", "http://h/cart?step=1"),
    ("http://h/a;JSESSIONID=x/b", "http://h/a/b"),
    ("http://h/a?PHPSESSID=9f&page=2", "http://h/a?page=2"),
    ("http://h/a?page=2&sid=77", "http://h/a?page=2"),
    ("http://h/a?sid=77", "http://h/a"),
    ("http://h/a?SessionId=1&x=&Session_ID=2", "http://h/a?x="),
    ("http://h/a?ASPSESSIONIDQQGGGNCU=ABC&b=1", "http://h/a?b=1"),
    ("http://h/a?CFID=12&CFTOKEN=34&c=1", "http://h/a?c=1"),
    ("http://h/a?zenid=5&c=1", "http://h/a?c=1"),
    ("http://h/a?a=1&sid=2&b=3", "http://h/a?a=1&b=3"),
    ("http://h/a?u=?&sid=1", "http://h/a?u=?"),  # the first '?' starts the query
    ("http://h/a?osCsid=5&sess_id=6&c=1", "http://h/a?c=1"),
    ("http://h/(S(lit3py55t21z5v55vlm25s55))/page.aspx", "http://h/page.aspx"),
    ("http://h/a?side=1&sids=2&presid=3", "http://h/a?side=1&sids=2&presid=3"),  # other names
    ("http://h/a?q=sid=1", "http://h/a?q=sid=1"),  # a value, not a name
    ("http://h/sid=1/x", "http://h/sid=1/x"),  # a path segment, not a parameter
])
def test_session_ids_are_removed_by_canonicalization(url: str, canonical: str) -> None:
    assert canonicalize(url) == canonical
    # The fast path for links on a page agrees with the full parse.
    path = url.split("/", 3)[3]
    assert Resolver("http://h/index.html").resolve("/" + path) == canonical
    assert Resolver("http://h/index.html").resolve(url) == canonical


def test_pages_are_remembered_up_to_the_bound_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's children are judged against it only while it is among the
    last _MAX_PAGES pages noted; the oldest is forgotten first."""
    import loopcrawl.core.traps as traps

    def months(guard: TrapGuard, others: int) -> str:
        prev, fam = None, ""
        for m in range(1, 4):
            _, _, body = section.response(f"/traps/cal/2026/{m:02d}/", "")
            url = f"http://h/traps/cal/2026/{m:02d}/"
            if m == 3:  # pages noted in between push the second month out, or not
                for i in range(others):
                    guard.page(f"http://h/other/{i}", None, b"x", [])
            fam = guard.page(url, prev, body, [url, "http://h/traps/"])
            prev = url
        return fam

    monkeypatch.setattr(traps, "_MAX_PAGES", 4)
    assert months(TrapGuard(Settings()), 2) == "h/traps"  # months 1 and 2 still known
    assert months(TrapGuard(Settings()), 3) == "h/traps"  # month 1 forgotten: no matter
    assert months(TrapGuard(Settings()), 4) == ""  # month 2, the parent, forgotten
    guard = TrapGuard(Settings())
    for i in range(5):  # four pages exactly, never five
        guard.page(f"http://h/p/{i}", None, b"x", [])
    assert [guard.parent(f"http://h/p/{i}") is not None for i in range(5)] == [
        False, True, True, True, True]
    guard = TrapGuard(Settings())
    for i in range(10):
        guard.page(f"http://h/p/{i}", None, b"x", [])
        guard.page(f"http://h/p/{i}", None, b"x", [])  # the same URL twice
    assert len(guard._pages) <= 4


@pytest.mark.parametrize("way", ["page", "noted"])
def test_pages_are_remembered_up_to_the_bytes_of_their_links(
        monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    """The pages kept for their children hold at most _MAX_LINK_BYTES of link
    hashes, the oldest forgotten first: 65,536 pages of 10,000 links would
    hold 5 GB. A page noted again counts once; one above the bound alone is
    kept alone, until the next; the count does not drift (a byte off a page
    would let the pages kept outgrow the bound over a long crawl)."""
    import loopcrawl.core.traps as traps

    monkeypatch.setattr(traps, "_MAX_LINK_BYTES", 8 * 30)  # 30 links
    guard = TrapGuard(Settings())

    def note(name: str, links: int) -> None:
        url = f"http://h/{name}"
        if way == "page":
            guard.page(url, None, b"x", [], list(range(links)))
        else:
            guard.noted(url, 1, link_hashes([f"{url}/{i}" for i in range(links)]), 0, False)

    def kept() -> str:
        return "".join(p for p in "abcdef" if guard.parent(f"http://h/{p}") is not None)

    for name in "abc":
        note(name, 10)
    assert kept() == "abc"  # 30 links: the bound exactly
    note("d", 1)
    assert kept() == "bcd"
    note("c", 10)  # again: 21 links, not 31
    assert kept() == "bcd"
    note("e", 31)
    assert kept() == "e"
    note("f", 1)
    assert kept() == "f"
    for i in range(100):  # the count has not drifted: the last 30 pages, exactly
        note(f"p{i}", 1)
    assert [guard.parent(f"http://h/p{i}") is not None for i in range(100)] == [
        False] * 70 + [True] * 30


def test_the_link_bytes_remembered_are_64_mib_by_default() -> None:
    """Four pages of 16 MiB of link hashes fill the bound exactly; 8 bytes
    more forget the first. (The bytes are one object, shared: only their
    length counts.)"""
    guard = TrapGuard(Settings())
    quarter = bytes(16 << 20)
    for i in range(4):
        guard.noted(f"http://h/{i}", 1, quarter, 0, False)
    assert all(guard.parent(f"http://h/{i}") is not None for i in range(4))
    guard.noted("http://h/4", 1, bytes(8), 0, False)
    assert [guard.parent(f"http://h/{i}") is not None for i in range(5)] == [
        False, True, True, True, True]


# The similarity test at its boundaries, step by step. Words are chosen by the
# bit ``sketch`` gives them (``hash(word) & 4095``) so that no two collide in
# a run: a count of new words is then exactly the number of words added.


def _words(n: int, taken: set[int], stem: str) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while len(out) < n:
        w = f"{stem}{i}".encode()
        i += 1
        bit = hash(w) & 4095
        if bit not in taken:
            taken.add(bit)
            out.append(w)
    return out


def _body(words: list[bytes], length: int) -> bytes:
    text = b"<p>" + b" ".join(words) + b"</p>"
    assert len(text) <= length
    return text + b" " * (length - len(text))


def _similar(length: int, child_length: int, new_words: int, new_links: int) -> tuple[str, str]:
    """The family of a child page with ``new_words`` and ``new_links`` its
    parent does not have, by ``TrapGuard.page`` and by the workers' steps
    (``parent``, ``compare``, ``noted``); the parent was read for words (it
    is like its own parent)."""
    taken = {hash(b"p") & 4095}
    base = _words(30, taken, "base")
    extra = _words(new_words, taken, "new")
    links = [f"http://h/l/{i}" for i in range(20)]
    more = [f"http://h/m/{i}" for i in range(new_links)]
    pages = [("http://h/cal/1", _body(base, length), links),
             ("http://h/cal/2", _body(base, length), links),
             ("http://h/cal/3", _body(base + extra, child_length), links + more)]
    page_guard, worker_guard = TrapGuard(Settings()), TrapGuard(Settings())
    prev: str | None = None
    fams: list[tuple[str, str]] = []
    for url, body, urls in pages:
        by_page = page_guard.page(url, prev, body, urls)
        hashes = link_hashes(urls)
        words, similar = compare(body, hashes, worker_guard.parent(prev))
        by_worker = worker_guard.noted(url, len(body), hashes, words, similar)
        fams.append((by_page, by_worker))
        prev = url
    assert fams[:2] == [("", ""), ("", "")]  # the first has no parent, the second's was not read
    return fams[2]


SIMILAR = ("h/cal", "h/cal")
NOT = ("", "")


@pytest.mark.parametrize(("length", "child_length", "new_words", "new_links", "family"), [
    (1000, 1000, 0, 0, SIMILAR),
    (1000, 1000, 8, 0, SIMILAR),  # NEW_WORDS
    (1000, 1000, 9, 0, NOT),
    (1000, 1000, 0, 8, SIMILAR),  # NEW_LINKS
    (1000, 1000, 0, 9, NOT),
    (1000, 1256, 0, 0, SIMILAR),  # 256 bytes longer or shorter
    (1000, 1257, 0, 0, NOT),
    (1000, 744, 0, 0, SIMILAR),
    (1000, 743, 0, 0, NOT),
    (4095, 4351, 0, 0, SIMILAR),  # still 256 below 4096 bytes ...
    (4095, 3838, 0, 0, NOT),
    (8192, 8704, 0, 0, SIMILAR),  # ... then 1/16
    (8192, 8705, 0, 0, NOT),
    (8192, 7679, 0, 0, NOT),
])
def test_a_page_is_similar_to_its_parent_up_to_each_bound(
        length: int, child_length: int, new_words: int, new_links: int,
        family: tuple[str, str]) -> None:
    assert _similar(length, child_length, new_words, new_links) == family



def test_a_page_not_read_is_no_parent_to_compare_with() -> None:
    """A page too unlike its own parent is not read for words, so its
    children are never found similar to it, however alike they are."""
    guard = TrapGuard(Settings())
    words = [b"one", b"two", b"three"]
    assert guard.page("http://h/c/1", None, _body(words, 3000), []) == ""
    assert guard.page("http://h/c/2", "http://h/c/1", _body(words, 1000), []) == ""
    assert guard.page("http://h/c/3", "http://h/c/2", _body(words, 1000), []) == ""
    assert guard.page("http://h/c/4", "http://h/c/3", _body(words, 1000), []) == "h/c"

def test_the_similarity_check_off_notes_nothing() -> None:
    guard = TrapGuard(Settings(max_similar_pages=None))
    assert guard.page("http://h/a", None, b"x", []) == ""
    assert guard.parent("http://h/a") is None
    assert guard.noted("http://h/b", 1, link_hashes([]), 5, True) == ""
    assert guard._pages == {}
    on = TrapGuard(Settings())
    assert on.parent(None) is None
    assert on.noted("http://h/b", 1, None, 5, True) == ""  # a page not parsed for links
    assert compare(b"x", link_hashes([]), None) == (0, False)
    # A page too long for its parent is not read: no sketch (0), so that its
    # own children are never found similar to it.
    assert compare(b"x" * 600, link_hashes([]), (300, b"", 1, "")) == (0, False)
    assert on.noted("http://h/c/d", 7, link_hashes(["http://h/"]), 5, True) == "h/c"
    assert on.parent("http://h/c/d") == (7, link_hashes(["http://h/"]), 5, "h/c")
    assert on.noted("http://h/e", 8, link_hashes([]), 0, False) == ""
    assert on.parent("http://h/e") == (8, b"", 0, "")


def test_the_workers_pages_are_remembered_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import loopcrawl.core.traps as traps

    monkeypatch.setattr(traps, "_MAX_PAGES", 3)
    guard = TrapGuard(Settings())
    for i in range(4):  # three pages exactly, never four
        guard.noted(f"http://h/{i}", i, link_hashes([]), 0, False)
    assert [guard.parent(f"http://h/{i}") is not None for i in range(4)] == [
        False, True, True, True]
    guard = TrapGuard(Settings())
    for i in range(4):
        guard.noted(f"http://h/{i}", i, link_hashes([]), 0, False)
        if i == 0:  # a URL noted twice (a redirect's target, a retry) is forgotten once
            guard.noted("http://h/0", 0, link_hashes([]), 0, False)
    assert guard.parent("http://h/0") is None  # the oldest is forgotten first
    assert [guard.parent(f"http://h/{i}") for i in (1, 2, 3)] == [
        (1, b"", 0, ""), (2, b"", 0, ""), (3, b"", 0, "")]


def test_similar_pages_admit_links_up_to_the_budget_per_family() -> None:
    guard = TrapGuard(Settings(max_similar_pages=5))
    skipped: Counter[str] = Counter()
    links = [f"http://h/{i}" for i in range(3)]
    assert guard.admit("h/a", links, skipped) == links
    assert guard.admit("h/a", links[:2], skipped) == links[:2]  # 5 exactly
    assert dict(skipped) == {} and dict(guard.stops) == {}  # no stop counted, not even 0
    assert guard.admit("h/a", links, skipped) == []
    assert dict(skipped) == {"trap_similar_pages": 3}
    assert dict(guard.stops) == {"max_similar_pages": 3}
    assert guard.admit("h/b", links + links, skipped) == links + links[:2]  # its own budget
    assert dict(skipped) == {"trap_similar_pages": 4}
    assert dict(guard.stops) == {"max_similar_pages": 4}
    assert guard.admit("h/b", [], skipped) == []
    assert guard.admit("h/b", links, skipped) == []  # spent
    assert dict(skipped) == {"trap_similar_pages": 7}
