"""Canonicalization, resolution and scope: the table a crawler lives by."""

from __future__ import annotations

import pytest

from loopcrawl.errors import ConfigError
from loopcrawl.urls import LinkMemo, Resolver, Scope, canonicalize, fingerprint, host_of

BASE = "http://127.0.0.1:8000/cat3/item4.html"

CASES = [
    # (href, expected canonical URL, why)
    ("/cat5/item6.html", "http://127.0.0.1:8000/cat5/item6.html", "absolute path"),
    ("item7.html", "http://127.0.0.1:8000/cat3/item7.html", "same directory"),
    ("./item8.html", "http://127.0.0.1:8000/cat3/item8.html", "dot segment"),
    ("../cat1/item2.html", "http://127.0.0.1:8000/cat1/item2.html", "parent directory"),
    ("../../../../x.html", "http://127.0.0.1:8000/x.html", "../ above the root"),
    ("/a/./b/../c.html", "http://127.0.0.1:8000/a/c.html", "dot segments inside"),
    ("HTTP://127.0.0.1:8000/x.html", "http://127.0.0.1:8000/x.html", "scheme case"),
    ("http://ExAmPlE.CoM/", "http://example.com/", "host case"),
    ("//127.0.0.1:8000/y.html", "http://127.0.0.1:8000/y.html", "protocol-relative"),
    ("http://example.com:80/a", "http://example.com/a", "default http port"),
    ("https://example.com:443/a", "https://example.com/a", "default https port"),
    ("http://example.com:8080/a", "http://example.com:8080/a", "other port kept"),
    ("http://example.com", "http://example.com/", "empty path"),
    ("item9.html#reviews", "http://127.0.0.1:8000/cat3/item9.html", "fragment dropped"),
    ("/t?", "http://127.0.0.1:8000/t", "empty query dropped"),
    ("/q?b=2&a=1", "http://127.0.0.1:8000/q?b=2&a=1", "query order kept"),
    ("/cat%33/item%34%35.html", "http://127.0.0.1:8000/cat3/item45.html", "unreserved escapes decoded"),
    ("/%7euser/", "http://127.0.0.1:8000/~user/", "tilde escape decoded"),
    ("/a%2fb", "http://127.0.0.1:8000/a%2Fb", "reserved escape kept, upper-cased"),
    ("/a%c3%a9", "http://127.0.0.1:8000/a%C3%A9", "non-ASCII escape upper-cased"),
    ("/é", "http://127.0.0.1:8000/%C3%A9", "non-ASCII encoded"),
    ("/a b", "http://127.0.0.1:8000/a%20b", "space encoded"),
    ("  /z.html\n", "http://127.0.0.1:8000/z.html", "surrounding whitespace"),
    ("/x\n/y", "http://127.0.0.1:8000/x/y", "newline inside removed (WHATWG)"),
    ("http://bücher.de/", "http://xn--bcher-kva.de/", "IDNA host"),
    ("http://[::1]:80/", "http://[::1]/", "IPv6 host, default port"),
    ("../", "http://127.0.0.1:8000/", "parent directory itself"),
    ("./", "http://127.0.0.1:8000/cat3/", "this directory"),
    ("..", "http://127.0.0.1:8000/", "bare .."),
    (".hidden", "http://127.0.0.1:8000/cat3/.hidden", "dot file"),
    ("../a/../b.html", "http://127.0.0.1:8000/b.html", "dot segments after ../"),
    ("./../x.html", "http://127.0.0.1:8000/x.html", "./ then ../"),
    ("../x:y", "http://127.0.0.1:8000/x:y", "colon after ../"),
    ("?page=2", "http://127.0.0.1:8000/cat3/item4.html?page=2", "query only"),
    ("http://example.com/a?x=%7E", "http://example.com/a?x=~", "escape in query"),
    ("a#b#c", "http://127.0.0.1:8000/cat3/a", "a second # in the fragment"),
    ("http://us%65r@h/%7e", "http://us%65r@h/~", "escapes in userinfo kept"),
    ("\xa0x", "http://127.0.0.1:8000/cat3/%C2%A0x", "no-break space: not HTML whitespace"),
]

SKIPPED = ["#top", "mailto:a@example.com", "javascript:void(0)", "tel:+123",
           "data:text/html,hi", "file:///etc/passwd", "ftp://example.com/",
           "http://a b/", "https://", "http://[bad/"]


@pytest.mark.parametrize(("href", "expected", "why"), CASES, ids=[c[2] for c in CASES])
def test_resolve(href: str, expected: str, why: str) -> None:
    assert Resolver(BASE).resolve(href) == expected
    # The fast path and the full parse must agree.
    assert canonicalize(href, BASE) == expected


@pytest.mark.parametrize("href", SKIPPED)
def test_not_crawlable(href: str) -> None:
    assert Resolver(BASE).resolve(href) is None


def test_fast_path_agrees_with_full_parse() -> None:
    """Differential test: every href built from common pieces resolves the
    same through the fast path as through ada-url's WHATWG parse."""
    import itertools

    pieces = ["", "/", "./", "../", "../../", "a", "b.html", "?q=1", "#f", "%41", "c/", ".",
              "..", "//h/", "http://127.0.0.1:8000/", "~", ":", "x y", "%2e", "%2E%2e/", "%2f",
              "%7E", "%zz", "%", " ", "\t", "\n", "HTTP://H:80/", "https://h:443", "//127.0.0.1:8000/",
              "mailto:", "a:b", "http:", "ftp://h/", "/..", "/./", "@", "?"]
    bases = [BASE, "http://127.0.0.1:8000/", "http://h/a/b/c?x=1", "https://h/",
             "https://u:p@h:8443/a/"]
    for base in bases:
        r = Resolver(base)
        for p1, p2, p3 in itertools.product(pieces, repeat=3):
            href = p1 + p2 + p3
            if href.strip().startswith("#") or not href.strip():
                continue
            assert r.resolve(href) == canonicalize(href, base), (base, href)



def test_pairs_of_pieces_resolve_as_the_full_parse_does() -> None:
    """The differential test above on pairs of pieces (a second, for
    ``make mutate``, which leaves the two-minute one out: a name that does not
    start with that one's, which ``--deselect`` would match as a prefix), with
    the origin cache emptied first so that every origin is parsed here."""
    import itertools

    import loopcrawl.urls as urls

    urls._ORIGINS.clear()
    pieces = ["", "/", "./", "../", "../../", "a", "b.html", "?q=1", "#f", "%41", "c/", ".",
              "..", "//h/", "http://127.0.0.1:8000/", "~", ":", "x y", "%2e", "%2E%2e/", "%2f",
              "%7E", "%zz", "%", " ", "\t", "HTTP://H:80/", "https://h:443", "//127.0.0.1:8000/",
              "mailto:", "a:b", "http:", "ftp://h/", "/..", "/./", "@", "?", "=", "(", ";sid=1",
              "?sid=2", "%7e", "%c3%a9", "http://H:8000", "//[::1]:80/", "Https://h/", "h",
              "HTTP:x", "http://h?x", "x:", "?u=/./v?w", "x))/", ")"]
    # Bases whose paths hold '(', '=', escapes and a dot-led segment: what
    # they hold must not change the URL a link resolves to.
    bases = [BASE, "http://127.0.0.1:8000/", "http://h/a/b/c?x=1", "https://h/",
             "https://u:p@h:8443/a/", "http://h/a/b/", "http://h/a//b/c", "http://h//x", "http://h/p?u=?v",
             "http://h/w/Foo_(bar)/x;v=1", "http://h/(S(ab/c", "http://h/caf%C3%A9/%7Bx/.p"]
    for base in bases:
        r = Resolver(base)
        for p1, p2 in itertools.product(pieces, repeat=2):
            href = p1 + p2
            if href.strip(" \t").startswith("#"):  # this very page: not a link to follow
                assert r.resolve(href) is None, (base, href)
                continue
            assert r.resolve(href) == canonicalize(href, base), (base, href)

def test_link_memo_agrees_with_the_resolver_across_pages_of_a_directory() -> None:
    """Pages of one directory share the memo: an href on the second page
    must resolve against the second page, whatever the first one gave."""
    import itertools

    pieces = ["", "?q=1", "#f", "a", "./", "../", "/", "b.html", " ", "//h/", "x:y", "%41"]
    hrefs = ["".join(p) for p in itertools.product(pieces, repeat=3)]
    pages = ["http://h/d/a.html", "http://h/d/b.html?x=1", "http://h/d/", "http://h/d/a.html#f",
             "https://h/d/a.html", "http://h:8080/d/a.html", "http://h/e/a.html", "http://h/"]
    memo = LinkMemo(max_hrefs=500)  # small: clears several times over
    for _ in range(2):
        for page in pages:
            r = Resolver(page)
            assert memo.resolve_all(r, hrefs) == [r.resolve(h) for h in hrefs], page
            assert len(memo) <= 500 + len(hrefs)
    # Bounded however the hrefs are spread over directories: here all in one.
    memo = LinkMemo(max_hrefs=100)
    r = Resolver("http://h/d/a.html")
    for i in range(50):
        assert memo.resolve_all(r, [f"i{i}-{j}.html" for j in range(10)])[0] == f"http://h/d/i{i}-0.html"
        assert len(memo) <= 100 + 10




def test_link_memo_keeps_each_directory_and_origin_apart() -> None:
    memo = LinkMemo()
    pages = ["http://h/d/x.html", "http://h/e/x.html", "https://h/d/x.html", "http://g/d/x.html"]
    for page in pages + pages:
        r = Resolver(page)
        assert memo.resolve_all(r, ["a", "../b"]) == [r.resolve("a"), r.resolve("../b")], page

def test_link_memo_is_cleared_when_it_holds_its_bound() -> None:
    """``max_hrefs`` kept at most before a page's hrefs are added: a memo
    that holds exactly its bound starts the next page empty."""
    memo = LinkMemo(max_hrefs=10)
    r = Resolver("http://h/d/a.html")
    memo.resolve_all(r, [f"p{i}" for i in range(9)])
    assert len(memo) == 9
    memo.resolve_all(r, ["p0", "q0", "?x", ""])  # one new href kept; "?x" and "" are not
    assert len(memo) == 10
    assert memo.resolve_all(r, ["q1", "q1"]) == ["http://h/d/q1", "http://h/d/q1"]
    assert len(memo) == 1  # cleared first, then "q1" once

def test_canonical_is_a_fixed_point() -> None:
    for _, expected, _ in CASES:
        assert canonicalize(expected) == expected


def test_fingerprint_is_stable_and_distinguishes() -> None:
    a = fingerprint("http://a/1")
    assert a == fingerprint("http://a/1")
    assert a != fingerprint("http://a/2")
    assert a != fingerprint("http://a/1", "POST", b"x")
    assert 0 <= a < 2**64


def test_resolver_with_base_directory_and_query() -> None:
    r = Resolver("http://h/dir/page?x=1")
    assert r.resolve("other") == "http://h/dir/other"
    assert Resolver("http://h/dir/").resolve("a.html") == "http://h/dir/a.html"


def test_host_of() -> None:
    assert host_of("http://127.0.0.1:8000/x") == "127.0.0.1:8000"
    assert host_of("https://example.com/") == "example.com"
    assert host_of("http://h/a/b/c") == "h"


def test_a_resolver_canonicalizes_its_base_and_refuses_other_schemes() -> None:
    assert Resolver("HTTP://Example.COM:80/a/b").resolve("c") == "http://example.com/a/c"
    assert Resolver("http://h/a/b", canonical=True).resolve("c") == "http://h/a/c"
    with pytest.raises(ValueError, match=r"^not an http\(s\) URL: 'mailto:a@b'$"):
        Resolver("mailto:a@b")
    assert canonicalize("\xa0http://h/") is None  # only HTML whitespace is stripped


def test_scope_host_domain_any() -> None:
    seeds = ["http://www.example.com/"]
    host = Scope("host", seeds)
    assert host.allows("http://www.example.com/a")
    assert not host.allows("http://example.com/a")
    assert not host.allows("http://www.example.com:81/a")
    dom = Scope("domain", seeds)
    assert dom.allows("http://example.com/a")
    assert dom.allows("https://shop.example.com/a")
    assert not dom.allows("http://badexample.com/a")
    assert Scope("any", seeds).allows("http://elsewhere.org/")


def test_scope_allow_deny() -> None:
    s = Scope("host", ["http://h/"], allow=[r"/cat\d+/"], deny=[r"item1\d\.html"])
    assert s.allows("http://h/cat1/item2.html")
    assert not s.allows("http://h/cat1/item12.html")
    assert not s.allows("http://h/tags/")


def test_scope_filter_agrees_with_allows() -> None:
    urls = ["http://www.example.com/a", "http://example.com/a", "https://www.example.com/b",
            "http://www.example.com:81/a", "https://shop.example.com/cat1/item2.html",
            "http://elsewhere.org/", "http://www.example.com/cat1/item12.html"]
    seeds = ["http://www.example.com/"]
    for scope in (Scope("host", seeds), Scope("domain", seeds), Scope("any", seeds),
                  Scope("host", seeds, allow=[r"/cat\d+/"], deny=[r"item1\d\.html"])):
        assert scope.filter(urls) == [u for u in urls if scope.allows(u)]
    assert Scope("host", seeds).filter(urls) == urls[:1] + urls[2:3] + urls[6:]


def test_scope_filter_applies_allow_alone() -> None:
    s = Scope("host", ["http://h/"], allow=[r"/cat"])
    assert s.filter(["http://h/cat1", "http://h/tags", "http://g/cat1"]) == ["http://h/cat1"]


def test_scope_bad_input() -> None:
    """The one line the user reads (``loopcrawl: error: ...``), word for word."""
    with pytest.raises(ConfigError, match=r"^scope must be one of host, domain, any, not 'planet'$"):
        Scope("planet", ["http://h/"])
    with pytest.raises(ConfigError, match=r"^bad --allow/--deny pattern: missing \), unterminated"):
        Scope("host", ["http://h/"], allow=["("])
