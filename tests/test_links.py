"""Link extraction: what a browser reads as a link, in bounded time.

The tokenizer scan (used on tag soup a tree builder cannot afford) is checked
against lexbor's tree: the same links, title and base."""

from __future__ import annotations

import random
from typing import Any

import pytest

from loopcrawl.links import MAX_UNCLOSED, LinkParser, PageLinks, extract, extract_tree, scan
from loopcrawl.testsite import Site

CASES = [
    # (html, hrefs, title, base)
    ('<a href="x">y</a>', ["x"], None, None),
    ("<A HREF = 'Q'><a/href=slash><a\thref=tab>", ["Q", "slash", "tab"], None, None),
    ('<a href=1 href=2><a data-href=no><abbr href=no><area href=ar>', ["1", "ar"], None, None),
    ('<a href="?a=1&copy=2&amp=3&notit=4&amp;x&lt&#65;">', ["?a=1&copy=2&amp=3&notit=4&x<A"],
     None, None),
    ('<a href="a\x00b"><a href="c\r\nd\re">', ["a\ufffdb", "c\nd\ne"], None, None),
    ('<title> A &amp;\n B </title><title>2</title><base href=/b/><base href=/c/>', [],
     "A & B", "/b/"),
    ('<a title="<a href=bad>" href=good><img alt="<a href=img>">', ["good"], None, None),
    ("<!-- <a href=c1> --><a href=ok><!--><a href=ok2><!---><a href=ok3><!-- --!><a href=ok4>",
     ["ok", "ok2", "ok3", "ok4"], None, None),
    ("<? <a href=no> ><! <a href=no2> ></ <a href=no3> ><a href=yes>", ["yes"], None, None),
    ('<script>x="<a href=s>"</script ><a href=ok>', ["ok"], None, None),
    ('<script><!--<script>"</script><a href=no>"--></script><a href=yes>', ["yes"], None, None),
    ("<style><a href=s></style><textarea><a href=t></textarea><xmp><a href=x></xmp>"
     "<iframe><a href=i></iframe><noembed><a href=n></noembed><noframes><a href=f></noframes>"
     "<noscript><a href=ns></noscript>", ["ns"], None, None),
    ("<template><a href=x><title>t</title></template><a href=z>", ["z"], None, None),
    ("<a href=before><plaintext><a href=after>", ["before"], None, None),
    ("<svg><a href=s>y</a></svg><math><a href=m></a></math>", ["s", "m"], None, None),
    ("<p>1 < 2 <a href=yes> 3 > 2", ["yes"], None, None),
    ("<a href=\"'q'&amp;\"><a href='\"d\"'><base href='\"b\"'>", ["'q'&", '"d"'], None, '"b"'),
    ("<a href=x", [], None, None),  # the end of the file inside the tag: no tag
    ('<a href="unterminated>', [], None, None),
    ("<a href> <a href=''> <a href=\"\">", [], None, None),
]


@pytest.mark.parametrize(("html", "hrefs", "title", "base"), CASES)
def test_extract_cases(html: str, hrefs: list[str], title: str | None, base: str | None) -> None:
    for doc in (html, html.encode()):
        for how in (extract, scan):
            page = how(doc)
            assert (page.hrefs, page.title, page.base_href) == (hrefs, title, base), how


def _same(html: str | bytes) -> None:
    a, b = scan(html), extract_tree(html)
    # The tree builder clones misnested <a> elements (the same link again),
    # and lists <area> after every <a>.
    assert (sorted(set(a.hrefs)), a.title, a.base_href) == (
        sorted(set(b.hrefs)), b.title, b.base_href), html


def test_scan_agrees_with_the_tree_on_every_test_site_page() -> None:
    site = Site(2000, seed=3)
    base = "http://127.0.0.1:8000"
    n = 0
    for url in site.expected(base):
        status, headers, body = site.response(url.removeprefix(base), "127.0.0.1:8000")
        if status == 200 and "html" in headers.get("Content-Type", ""):
            _same(body)
            n += 1
    assert n > 2000


FRAGMENTS = [
    '<a href="/x">', "<a href='/y'>", "<a href=/z>", "</a>", '<A HREF="/Q">', '<area href="/ar">',
    '<a title="<a href=/bad>" href="/t">', "<a title='>' href=/gt>", '<a data-href="/no">',
    "<a href>", '<a href="">', '<a href="/amp?a=1&amp;b=2&copy=3&lt">', "<a href=/d href=/d2>",
    '<a\nhref=\n"/nl">', "<a/href=/sl>", "<!--", "-->", "--!>", "<!-->", "<!--->", "<!-- x -->",
    "<!DOCTYPE html>", "<?php x ?>", "<! bogus >", "</ bogus>", "</>", "<script>", "</script>",
    '<script type="x">', "<style>", "</style>", "<textarea>", "</textarea>", "<title>", "</title>",
    "T&amp;t", "<xmp>", "</xmp>", "<iframe src=x>", "</iframe>", "<noembed>", "</noembed>",
    "<noframes>", "</noframes>", "<noscript>", "</noscript>", '<base href="/b/">', "<base>",
    "<div>", "</div>", '<p class="x y">', '<img src="a.png" alt="<a href=/img>">', "<br/>",
    "<span>", " text ", "1 < 2", "<", ">", '"', "'", "=", "&", "&amp;", "\n", "<table><tr><td>",
    "</td></tr></table>", "<ul><li>", "</li></ul>", "<abbr>", "<b>", "</b>",
    '<a href="/e&#x41;&#65;">', '<a href="/u\u00e9">', '<div x=a"b>', "<div x=\"a'b\">",
    '<a href="/r\r\nx">', "</p>", "<head>", "</head>", "<body>", "</body>", "<meta charset=utf-8>",
    "<link rel=x href=/l>", "<form>", "</form>", "<button>", "</button>", "<em>",
]


def test_scan_agrees_with_the_tree_on_tag_soup() -> None:
    """Thousands of documents stitched from hazards (fixed seeds)."""
    for seed in range(4000):
        r = random.Random(seed)
        doc = "".join(r.choice(FRAGMENTS) for _ in range(r.randint(1, 40)))
        _same(doc)
        if seed % 4 == 0:
            _same(doc.encode())


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("html", "hrefs"), [
    ("<div>" * 100_000 + '<a href="/deep">', ["/deep"]),
    ("<!--" + "x<a href=/c>" * 100_000, []),
    ('<p title="' + "<a href=/q>" * 100_000, []),
    ("<" * 1_000_000 + '<a href="/l">', ["/l"]),
    ('<a href="/x" ' * 100_000, []),
    ("<script><!--<script>" + "</script>-->" * 50_000, []),
    ("<script><!--" + "-" * 500_000 + "<a href=/d>", []),
    ("<div " + 'x="1" ' * 200_000 + '><a href="/after">', ["/after"]),
    ("</" * 300_000 + "<a href=/ls>", []),
], ids=["nested", "comment", "quote", "lt", "open-a", "script", "dashes", "attrs", "end-tags"])
def test_extract_is_bounded_on_pathological_pages(html: str, hrefs: list[str]) -> None:
    """lexbor's tree builder is quadratic in unclosed nesting: past
    MAX_UNCLOSED open tags the page is scanned for links instead."""
    assert extract(html).hrefs == hrefs
    assert MAX_UNCLOSED < 100_000


def test_link_cap() -> None:
    page = extract('<a href="/x">' * 50, max_links=10)
    assert page.truncated and len(page.hrefs) == 10


# -- what lexbor gets: bytes for UTF-8, text otherwise -------------------------
_UTF8_PAGE = ('<meta charset="utf-8"><title>Café — ∑</title>'
              '<a href="/é">a</a><a href="/ü?q=ß">b</a>').encode()


@pytest.mark.parametrize(("body", "charset", "as_bytes"), [
    (_UTF8_PAGE, None, True),  # declared by <meta>, valid
    (_UTF8_PAGE.replace(b'<meta charset="utf-8">', b""), None, True),  # detected
    (_UTF8_PAGE, "utf-8", True),  # by header
    (_UTF8_PAGE.replace("∑".encode(), b"\xff"), None, False),  # one invalid byte
    (_UTF8_PAGE.replace("∑".encode(), b"\xff"), "utf-8", True),  # by header: trusted as is
    (b"\xef\xbb\xbf" + _UTF8_PAGE, None, False),  # a BOM, which the decode drops
    (_UTF8_PAGE.replace(b"utf-8", b"windows-1252"), None, False),  # another charset
    ('<meta charset="utf-8"><title>\ufffd</title>'.encode(), None, False),  # U+FFFD written
])
def test_decode_html_gives_lexbor_the_bytes_only_when_they_are_the_text(
        body: bytes, charset: str | None, as_bytes: bool) -> None:
    """lexbor reads UTF-8, and selectolax encodes a ``str`` back to it (~10
    instructions a character): valid UTF-8 goes as the bytes themselves.
    Either way the links and title are those of the decoded text."""
    from w3lib.encoding import html_to_unicode

    from loopcrawl.encoding import decode_html

    got, _ = decode_html(body, charset)
    assert (got is body) is as_bytes
    assert as_bytes or isinstance(got, str)
    text = html_to_unicode(f"text/html; charset={charset}" if charset else None, body)[1]
    assert extract_tree(got) == extract_tree(text)


def test_hrefs_that_give_no_url_are_told_apart_by_scheme() -> None:
    """``not_http``: another scheme, named before the first ':' (whatever
    follows); ``invalid_url``: http(s) in any case, or no scheme, that does not
    parse; a fragment is the page itself, neither."""
    hrefs = {"mailto:a@h?subject=x:y": "not_http", "javascript:a:b": "not_http",
             "tel:1": "not_http", "https://[bad": "invalid_url",
             "HTTP://[bad": "invalid_url", "//[bad": "invalid_url", "#x": ""}
    parser = LinkParser(100)
    got = parser.parse("http://h/", "".join(f'<a href="{h}">x</a>' for h in hrefs).encode(),
                       "utf-8")
    assert got.urls == [] and got.unfollowable == {"not_http": 3, "invalid_url": 3}
    assert parser._unfollowable == hrefs


@pytest.mark.parametrize(("html", "urls"), [
    # refreshed at once, or within 100 s (Scrapy's METAREFRESH_MAXDELAY): a link
    ('<meta http-equiv="refresh" content="0; url=/home">', ["http://h/home"]),
    ("<META HTTP-EQUIV=Refresh CONTENT='99.9;URL=next'><a href=/a>a</a>",
     ["http://h/a", "http://h/d/next"]),
    ('<META HTTP-EQUIV=REFRESH CONTENT="0;URL=/UP">', ["http://h/UP"]),
    ('<base href="/b/"><meta http-equiv="refresh" content="5;url=x"><a href="x">x</a>',
     ["http://h/b/x"]),  # resolved as the links are, and once
    # not a redirect: a page reloading itself, a long wait, hidden, no URL
    ('<meta http-equiv="refresh" content="100; url=/late">', []),
    ('<meta http-equiv="refresh" content="30">', []),
    ('<meta http-equiv="refresh" content="0; url=">', []),  # not the page itself
    ('<!-- <meta http-equiv="refresh" content="0;url=/c"> -->', []),
    ('<noscript><meta http-equiv="refresh" content="0;url=/n"></noscript>', []),
    ('<meta name="refresh" content="0;url=/named">', []),
    ('<meta http-equiv="refresh" content="0;url=javascript:go()">', []),
])
def test_a_meta_refresh_within_100_s_is_a_link(html: str, urls: list[str]) -> None:
    """A front page that only refreshes to the home page must not end the crawl."""
    for charset in ("utf-8", "windows-1252"):  # lexbor given the bytes, or text
        assert LinkParser(100).parse("http://h/d/", html.encode(), charset).urls == urls, charset


def test_the_verdicts_on_hrefs_are_kept_up_to_4096_then_cleared() -> None:
    parser = LinkParser(10_000)
    page = "".join(f'<a href="mailto:{i}@h">x</a>' for i in range(4096)).encode()
    assert parser.parse("http://h/", page, "utf-8").unfollowable == {"not_http": 4096}
    assert len(parser._unfollowable) == 4096
    parser.parse("http://h/", b'<a href="mailto:new@h">x</a>', "utf-8")
    assert parser._unfollowable == {"mailto:new@h": "not_http"}


@pytest.mark.parametrize("html", [
    "<template><template></template><a href=/in></template><a href=/out>",  # nested
    "</template><template><a href=/t></template><a href=/after>",  # a stray end tag first
    "<template><template><a href=/x></template></template><base href=/b/><title>T</title>",
])
def test_scan_keeps_template_content_out_as_the_tree_does(html: str) -> None:
    _same(html)
    assert scan(html).hrefs == extract_tree(html).hrefs


def test_scan_on_its_own_terms() -> None:
    """What the tag soup does not reach: invalid UTF-8 replaced (not raised), a reference ending in
    ';' decoded even before '=', an empty base href ignored."""
    assert scan(b'<title>caf\xe9</title><a href="/\xff">') == PageLinks("caf\ufffd", None, ["/\ufffd"])
    assert scan('<a href="/q?a&amp;=1&copy;=2&copy=3">').hrefs == ["/q?a&=1\u00a9=2&copy=3"]
    assert scan('<base href=""><a href=x>') == PageLinks(None, None, ["x"])


def test_a_page_is_scanned_past_max_unclosed_and_only_then() -> None:
    """Where the scan and the tree part by design (a misnested ``<a>`` is
    cloned by the tree builder) tells which read the page: the tree up to
    MAX_UNCLOSED unclosed tags, however long the page; the scan past it, as
    text or bytes. The count is skipped for pages of at most 5 × MAX_UNCLOSED
    bytes (too short to hold enough start tags to be slow)."""
    misnested = '<a href="/x"><p>t</a>'
    assert (extract_tree(misnested).hrefs, scan(misnested).hrefs) == (["/x", "/x"], ["/x"])
    at = "<div>" * (MAX_UNCLOSED - 1) + misnested  # MAX_UNCLOSED unclosed
    over = "<div>" * MAX_UNCLOSED + misnested
    for page in (at, at.encode()):
        assert extract(page).hrefs == ["/x", "/x"]
    for page in (over, over.encode()):
        assert extract(page).hrefs == ["/x"]
    two = over + "<a href=/y>"
    for page in (two, two.encode()):  # the cap holds on the scan too
        assert extract(page, 1) == PageLinks(None, None, ["/x"], truncated=True)
    assert extract("<p>" + "x" * 20_000 + "</p>" + misnested).hrefs == ["/x", "/x"]
    short = "<b>" * (MAX_UNCLOSED + 1)
    short += " " * (5 * MAX_UNCLOSED - len(short) - len(misnested)) + misnested
    assert len(short) == 5 * MAX_UNCLOSED and extract(short).hrefs == ["/x", "/x"]


@pytest.mark.parametrize("read", [scan, extract_tree])
def test_the_link_cap_at_its_boundary_keeps_title_and_base(read: Any) -> None:
    page = "<title>T</title><base href=/b/>" + "<a href=/x>" * 3
    assert read(page, 3) == PageLinks("T", "/b/", ["/x"] * 3)
    assert read(page, 2) == PageLinks("T", "/b/", ["/x"] * 2, truncated=True)
