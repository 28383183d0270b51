"""``loopcrawl.http`` pinned where the crawl and spiders rely on it (found by
``make mutate``): header checks, request fingerprints, form requests, what a
``Response`` gives a callback, and the page record's fields."""

from __future__ import annotations

import math

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from loopcrawl.http import FetchRecord, Request, Response, check_header
from loopcrawl.urls import fingerprint


@pytest.mark.parametrize(("name", "value"), [
    ("X-A\r\nX-B", "v"), ("X-A\n", "v"), ("X\0A", "v"), ("X\x7fA", "v"), ("X\x1fA", "v"),
    ("X-A", "v\r\nX-B: w"), ("X-A", "v\n"), ("X-A", "v\0"), ("X-A", "v\x7f"), ("X-A", "\x01v"),
    ("X:A", "v"), ("", "v"),
])
def test_a_header_that_could_smuggle_another_is_refused_word_for_word(name: str,
                                                                       value: str) -> None:
    with pytest.raises(ValueError) as e:
        check_header(name, value)
    assert str(e.value) == f"header {name!r} holds a line break or a control character"


def test_a_plain_header_and_a_tab_in_its_value_pass() -> None:
    check_header("X-A", "a\tb: c; d=e")
    check_header("X-A", "")


def test_fingerprints_tell_method_and_body_apart_and_agree_with_urls() -> None:
    u, v = "http://h/a", "http://h/b"
    assert Request(u).fp == fingerprint(u) == Request(u, method="GET", body=b"").fp
    assert Request(u, method="POST").fp == fingerprint(u, "POST") != Request(u).fp
    assert Request(u, body=b"x").fp == fingerprint(u, "GET", b"x") != Request(u).fp
    posts = {Request(u, method="POST", body=b"a").fp, Request(u, method="POST", body=b"b").fp,
             Request(u, method="PUT", body=b"a").fp, Request(v, method="POST", body=b"a").fp}
    assert len(posts) == 4 and fingerprint(u, "POST", b"a") in posts
    assert Request(u, fp=7).fp == 7  # a persisted request keeps its own


def test_a_new_request_is_unleased_with_its_fields_as_given() -> None:
    r = Request("http://h/", cb_kwargs={"k": 1})
    assert (r.priority, r.retries, r.method, r.lease, r.lease_deadline) == (0, 0, "GET", 0,
                                                                             math.inf)
    assert r.cb_kwargs == {"k": 1} and r.body == b"" and r.dont_filter is False


def test_a_get_form_replaces_the_query_and_drops_the_fragment() -> None:
    r = Request.form("http://h/s?old=1?x#f#g", {"q": "a b", "n": [1, 2]}, method="get",
                     meta={"m": 1}, callback="cb")
    assert (r.method, r.url, r.body, r.headers) == ("GET", "http://h/s?q=a+b&n=1&n=2", b"", None)
    assert (r.meta, r.callback) == ({"m": 1}, "cb")
    assert Request.form("http://h/s?old=1#f", {}, method="GET").url == "http://h/s"
    assert Request.form("http://h/s#f#g", {"q": 1}, method="GET").url == "http://h/s?q=1"
    assert Request.form("http://h/s #f", {"q": 1}, method="GET").url == "http://h/s ?q=1"


def test_a_post_form_is_urlencoded_into_the_body_with_its_headers() -> None:
    r = Request.form("http://h/s?keep=1", [("a", "1"), ("b", ("x", "y"))],
                     headers={"X-A": "v"}, meta={"m": 1})
    assert (r.method, r.url, r.body) == ("POST", "http://h/s?keep=1", b"a=1&b=x&b=y")
    assert r.headers == {"Content-Type": "application/x-www-form-urlencoded", "X-A": "v"}
    assert r.meta == {"m": 1} and r.fp == fingerprint("http://h/s?keep=1", "POST", b"a=1&b=x&b=y")
    assert Request.form("http://h/s", {"a": 1}, method="put").method == "PUT"


FORM = """<html><body>
<form id="f" action=" /go?x=1 " method="post">
  <input name="text">
  <input name="given" value="v">
  <input name="upper" type="TEXT" value="u">
  <input name="box" type="checkbox" checked>
  <input name="box2" type="checkbox" value="b2" checked>
  <input name="unchecked" type="checkbox">
  <input name="radio" type="RADIO" checked>
  <input name="off" value="x" disabled>
  <input name="s" type="submit" value="Go"><input name="i" type="IMAGE">
  <input name="b" type="button"><input name="r" type="Reset"><input name="fi" type="file">
  <textarea name="empty"></textarea><textarea name="note">a note</textarea>
  <select name="first"><option>  one </option><option>two</option></select>
  <select name="chosen"><option value="1">one</option><option value="2" selected>two</option></select>
  <select name="multi" multiple><option>one</option></select>
  <select name="none"></select>
</form>
<form id="g"><input name="q" value="z"></form>
<a id="a" href="/page">a</a><img id="i" src="/img.png"><a id="n">none</a>
</body></html>"""


def _page(**kw: object) -> Response:
    headers = {"Content-Type": "text/html; charset=utf-8"}
    return Response("http://h/dir/page", headers=headers, body=FORM.encode(),
                    request=Request("http://h/dir/page"), **kw)  # type: ignore[arg-type]


def test_submit_sends_what_a_browser_sends() -> None:
    r = _page().submit("#f", {"given": "new", "text": None}, meta={"m": 1})
    assert (r.method, r.url, r.referrer, r.meta) == ("POST", "http://h/go?x=1", "http://h/dir/page",
                                                     {"m": 1})
    assert r.body.decode().split("&") == [
        "given=new", "upper=u", "box=on", "box2=b2", "radio=on", "empty=", "note=a+note",
        "first=one", "chosen=2"]


def test_submit_defaults_the_first_form_its_page_and_get() -> None:
    r = Response("http://h/p?a=1", body=b"<form><input name=q value=z></form>",
                 headers={"Content-Type": "text/html"}).submit()
    assert (r.method, r.url, r.body) == ("GET", "http://h/p?q=z", b"")
    g = Response("http://h/p", body=b"<form action='' method='pOsT'><input name=q></form>",
                 headers={"Content-Type": "text/html"}).submit(referrer="r")
    assert (g.method, g.url, g.body, g.referrer) == ("POST", "http://h/p", b"q=", "r")
    # No action: the page's own URL, not its <base href>; an option with no
    # value and no text sends "".
    b = Response("http://h/p", body=b"<base href='/other/'><form><select name=s>"
                 b"<option selected></option></select></form>",
                 headers={"Content-Type": "text/html"}).submit()
    assert b.url == "http://h/p?s="


def test_follow_and_follow_all_carry_the_page_callback_and_arguments() -> None:
    page = _page()
    assert page.follow(page.css("#i")[0]).url == "http://h/img.png"  # src when no href
    assert page.follow(page.css("#a")[0]).url == "http://h/page"
    with pytest.raises(ValueError) as e:
        page.follow("mailto:x@h")
    assert str(e.value) == "not a followable http(s) link: 'mailto:x@h'"
    got = page.follow_all(css="a, img", callback="cb", meta={"m": 1})
    assert [(r.url, r.callback, r.referrer, r.meta) for r in got] == [
        ("http://h/page", "cb", "http://h/dir/page", {"m": 1}),
        ("http://h/img.png", "cb", "http://h/dir/page", {"m": 1})]
    with pytest.raises(ValueError) as e:
        page.follow_all()
    assert str(e.value) == "follow_all() takes exactly one of hrefs, css= or xpath="


def test_a_response_as_a_callback_reads_it() -> None:
    bare = Response("http://h/")
    assert (bare.status, bare.body, bare.request.url) == (200, b"", "http://h/")
    proxy = CIMultiDictProxy(CIMultiDict([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]))
    r = Response("http://h/", headers=proxy)
    assert r.headers is proxy and r.headers.getall("set-cookie") == ["a=1", "b=2"]
    latin = Response("http://h/", headers={"content-type": "text/plain; charset=latin-1"},
                     body="café".encode("latin-1"))
    assert latin.encoding == "cp1252" and latin.text == "café"
    assert Response("http://h/", body=b'{"a": [1]}').json() == {"a": [1]}
    utf16 = Response("http://h/", headers={"Content-Type": "application/json; charset=utf-16"},
                     body='{"b": 2}'.encode("utf-16"))
    assert utf16.json() == {"b": 2}
    assert _page().xpath("//a[@id=$x]/@href", x="a").getall() == ["/page"]


def test_the_page_records_fields_as_written() -> None:
    rec = FetchRecord("http://h/", 1, None, 1700000000.12345, final_url="http://h/x", status=200,
                      title="T", content_type="text/html", bytes=10, elapsed_ms=12.345, links=3)
    d = rec.to_dict()
    assert list(d.items()) == [
        ("url", "http://h/"), ("final_url", "http://h/x"), ("status", 200), ("depth", 1),
        ("referrer", None), ("title", "T"), ("content_type", "text/html"), ("bytes", 10),
        ("fetched_at", 1700000000.123), ("elapsed_ms", 12.3), ("links", 3)]
    rec.redirects = 2
    rec.error, rec.message = "http_status", "HTTP 404"
    d = rec.to_dict()
    assert list(d)[-3:] == ["redirects", "error", "message"]
    assert (d["redirects"], d["error"], d["message"]) == (2, "http_status", "HTTP 404")
    failed = FetchRecord("http://h/", 0, "http://r/", 0.0, error="timeout").to_dict()
    assert failed["message"] is None and "redirects" not in failed and failed["referrer"] == "http://r/"


def test_basic_auth_replaces_an_authorization_header_whatever_its_case() -> None:
    """A request's ``auth`` wins over an Authorization header it carries (one
    header is sent, not two); the crawl's goes to its hosts only."""
    from loopcrawl.net.auth import BasicAuth
    from loopcrawl.settings import Settings

    auth = BasicAuth(Settings(seeds=("http://h/",), http_auth=("admin", "secret")), ["h"])
    own = Request("http://h/", headers={"Authorization": "Bearer x", "X-A": "1"}, auth=("u", "p"))
    assert auth.headers(own) == {"Authorization": "Basic dTpw", "X-A": "1"}
    crawl = auth.headers(Request("http://h/", headers={"Authorization": "Bearer x"}))
    assert crawl == {"Authorization": "Basic YWRtaW46c2VjcmV0"}
    assert auth.headers(Request("http://elsewhere/", headers={"X-A": "1"})) == {"X-A": "1"}
