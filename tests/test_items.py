"""Items, Response and selectors on pages built in the test: no server needed."""

from __future__ import annotations

import dataclasses

import pytest

from loopcrawl import AttrField, Field, Item, Request, Response, TextField
from loopcrawl.spider.items import item_record

PAGE = """<html><head><title>Shop</title><base href="/sub/"></head><body>
<article class="book"><h3><a href="b1.html" title="Tom &amp; Jerry">Tom &amp;...</a></h3>
  <p class="price">£12.50</p><p class="stock">In stock (3 available)</p>
  <ul class="tags"><li>red</li><li> blue
  </li></ul>
  <ol><li class="review"><b class="who">Ann</b><i data-stars="4"></i></li>
      <li class="review"><b class="who">Bob</b><i data-stars="lots"></i></li></ol></article>
<article class="book"><h3><a href="mailto:x@y.z" title="Free">Free</a></h3>
  <p class="price">free</p></article>
<a class="ext" href="http://Other.example:80/x#frag">x</a><a class="js" href="javascript:void(0)">j</a>
</body></html>"""


def page(body: str | bytes = PAGE, ctype: str = "text/html; charset=utf-8",
         url: str = "http://shop.test/list/index.html") -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(url, 200, {"Content-Type": ctype}, data)


class Review(Item):
    who = Field(css=".who")
    stars = AttrField("i", attr="data-stars", parse=int)


class Book(Item):
    target = "article.book"
    title = AttrField("h3 a", attr="title")
    short = TextField("h3 a")
    href = Field(xpath=".//h3/a/@href")
    price = Field(css=".price", re=r"[\d.]+", parse=float)
    stock = Field(css=".stock", re=r"\((\d+) available", parse=int, default=0)
    tags = Field(css=".tags li", many=True)
    reviews = Field(css="li.review", item=Review, many=True)
    note = Field()


def test_fields_read_text_attributes_regex_parse_many_and_nested() -> None:
    first, second = Book.all(page())
    assert first.to_dict() == {
        "title": "Tom & Jerry", "short": "Tom &...", "href": "b1.html", "price": 12.5,
        "stock": 3, "tags": ["red", "blue"],
        "reviews": [{"who": "Ann", "stars": 4}, {"who": "Bob", "stars": None}],
        "note": None,
    }
    # Errors are per field, with the nested path; the item is still made.
    assert list(first.errors) == ["reviews[1].stars"]
    assert "ValueError" in first.errors["reviews[1].stars"]
    assert second.price is None and second.stock == 0 and second.tags == []
    assert set(second.errors) == {"price"}  # "free" has no digits; no stock line is no error
    assert Book.one(page()) == first


def test_one_without_target_reads_the_whole_page_and_required_fields() -> None:
    class Title(Item):
        title = Field(css="title", required=True)
        h9 = Field(css="h9", required=True)
        count = Field(xpath="count(//article)", parse=float)

    t = Title.one(page())
    assert t is not None
    assert (t.title, t.h9, t.count) == ("Shop", None, 2.0)
    assert t.errors == {"h9": "missing: nothing matched"}
    assert Book.one(page("<html><body><p>none</p></body></html>")) is None
    assert Book.all(page("<html></html>")) == []


def test_target_xpath_and_selector_scope() -> None:
    class Tag(Item):
        target_xpath = "//ul[@class='tags']/li"
        name = Field(xpath="normalize-space(.)")

    assert [t.name for t in Tag.all(page())] == ["red", "blue"]
    sel = page().css("article.book")[1]
    assert Book.one(sel).title == "Free"  # type: ignore[union-attr]


def test_bad_declarations_fail_when_the_class_is_defined() -> None:
    with pytest.raises(ValueError, match=r"Bad\.x: bad selector 'a\['"):
        class Bad(Item):
            x = Field(css="a[")
    with pytest.raises(ValueError, match=r"Bad2\.y: bad selector"):
        class Bad2(Item):
            y = Field(xpath="//a[")
    with pytest.raises(TypeError, match="reserved"):
        class Bad3(Item):
            errors = Field(css="a")
    with pytest.raises(ValueError, match="re= pattern"):
        Field(css="a", re="(")
    with pytest.raises(TypeError, match="no field 'nope'"):
        Book(nope=1)


def test_items_by_hand_inheritance_and_records() -> None:
    class Priced(Book):
        currency = Field(default="GBP")

    p = Priced(title="T", price=1.0)
    assert list(p.fields)[-1] == "currency" and p.currency == "GBP" and p.tags == []
    assert p == Priced(title="T", price=1.0) and p != Priced(title="U")
    kind, fields, data = item_record(p)
    assert kind == "Priced" and fields == tuple(Priced.fields) and data["price"] == 1.0

    @dataclasses.dataclass
    class Row:
        a: int
        b: list[Book]

    assert item_record(Row(1, [Book(title="x")])) == (
        "Row", ("a", "b"), {"a": 1, "b": [Book(title="x").to_dict()]})
    assert item_record({"k": (1, 2), "s": {3}}) == ("item", None, {"k": [1, 2], "s": [3]})
    with pytest.raises(TypeError):
        item_record(42)


@pytest.mark.parametrize(("body", "ctype", "text", "encoding"), [
    ("Цена".encode("cp1251"), "text/html; charset=windows-1251", "Цена", "cp1251"),
    ('<meta charset="gbk"><p>书</p>'.encode("gbk"), "text/html", "书", "gb18030"),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
     + "мир".encode("koi8_r"), "text/html", "мир", "koi8-r"),
    ("\ufeffhé".encode(), "text/html; charset=latin-1", "hé", "utf-8"),  # BOM beats header
    (b"ok \xff\xfe broken \x80", "text/html; charset=utf-8", "broken", "utf-8"),
])
def test_text_is_decoded_by_header_bom_meta_and_never_raises(
        body: bytes, ctype: str, text: str, encoding: str) -> None:
    r = page(body, ctype)
    assert text in r.text
    assert r.encoding.replace("_", "-") == encoding


def test_json_follow_urljoin_and_meta() -> None:
    assert Response("http://a.test/j", body=b'{"n": [1]}').json() == {"n": [1]}
    r = page()
    assert r.base_url == "http://shop.test/sub/"
    assert r.urljoin("x.html") == "http://shop.test/sub/x.html"
    req = r.follow(r.css("h3 a")[0], callback="parse_book", meta={"k": 1})
    assert (req.url, req.callback, req.meta, req.referrer) == (
        "http://shop.test/sub/b1.html", "parse_book", {"k": 1}, r.url)
    assert r.follow("HTTP://OTHER.example:80/a/../b#x").url == "http://other.example/b"
    with pytest.raises(ValueError):
        r.follow("javascript:void(0)")
    urls = [q.url for q in r.follow_all(css="a")]  # mailto: and javascript: left out
    assert urls == ["http://shop.test/sub/b1.html", "http://other.example/x"]
    assert [q.url for q in r.follow_all(["a", "b"], priority=3)] == [
        "http://shop.test/sub/a", "http://shop.test/sub/b"]
    assert r.follow_all(xpath="//a[@class='ext']/@href")[0].url == "http://other.example/x"
    with pytest.raises(ValueError):
        r.follow_all(["a"], css="a")
    r.meta["seen"] = True  # the request's own meta dict
    assert r.request.meta == {"seen": True}


def test_submit_sends_what_a_browser_would() -> None:
    form = """<form id="f" action="/search" method="post">
      <input type="hidden" name="token" value="t0k">
      <input name="q" value="old"><input name="off" disabled value="x">
      <input type="checkbox" name="c1" checked><input type="checkbox" name="c2" value="v">
      <input type="radio" name="r" value="a"><input type="radio" name="r" value="b" checked>
      <select name="s"><option>first</option><option value="2">second</option></select>
      <select name="m" multiple><option value="x" selected>X</option><option value="y" selected>Y</option></select>
      <textarea name="t">some text</textarea>
      <input type="submit" name="go" value="Go"></form>
      <form id="g" action="find"><input name="q"></form>"""
    r = page(form, url="http://shop.test/dir/page.html")
    req = r.submit("form#f", data={"q": "war & peace", "token": None, "extra": "1"})
    assert req.method == "POST" and req.url == "http://shop.test/search"
    assert req.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert req.body == (b"q=war+%26+peace&c1=on&r=b&s=first&m=x&m=y&t=some+text&extra=1")
    get = r.submit("form#g", data={"q": "a b"})
    assert (get.method, get.url, get.body) == ("GET", "http://shop.test/dir/find?q=a+b", b"")
    with pytest.raises(ValueError, match="no form"):
        r.submit("form#missing")
    post = Request.form("http://shop.test/s", [("a", 1), ("b", ["x", "y"])])
    assert post.body == b"a=1&b=x&b=y" and post.fp != Request("http://shop.test/s").fp


def test_the_public_api_is_exported_and_sorted() -> None:
    import loopcrawl

    assert loopcrawl.__all__ == sorted(loopcrawl.__all__)
    assert all(hasattr(loopcrawl, name) for name in loopcrawl.__all__)
    for name in ("Spider", "Request", "Response", "Item", "Field", "TextField", "AttrField",
                 "DropItem", "Dedup", "Failure", "crawl"):
        assert name in loopcrawl.__all__
