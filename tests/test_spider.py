"""Spiders against real servers: callbacks, errbacks, pipelines, scope, sessions."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopcrawl import (
    CrawlStats,
    Dedup,
    DropItem,
    Failure,
    FetchRecord,
    Request,
    Response,
    Settings,
    Spider,
    crawl,
)
from loopcrawl.testsite import ServerThread

from .conftest import PageServer


def run_spider(spider: Spider, **settings: Any) -> tuple[list[Any], list[FetchRecord], CrawlStats]:
    items: list[Any] = []
    records: list[FetchRecord] = []
    settings.setdefault("timeout", 10.0)
    stats = crawl(Settings(**settings), spider=spider, on_item=items.append,
                  on_record=records.append)
    return items, records, stats


def test_every_kind_of_callback(pages: PageServer) -> None:
    for p in ("/", "/agen", "/gen", "/coro", "/func", "/none", "/one"):
        pages.add(p, title=p)
    base = pages.url

    @dataclasses.dataclass
    class Row:
        page: str

    class S(Spider):
        start_urls = [base + "/"]

        def parse(self, response: Response) -> list[Request]:  # a list from a plain function
            return [Request(base + p, callback=getattr(self, p[1:]))
                    for p in ("/agen", "/gen", "/coro", "/func", "/none", "/one")]

        async def agen(self, response: Response) -> Any:
            yield {"page": "agen"}
            yield None

        def gen(self, response: Response) -> Any:
            yield Row("gen")

        async def coro(self, response: Response) -> Any:
            return [{"page": "coro"}, Request(base + "/one", callback=self.one)]  # a dupe

        def func(self, response: Response) -> Any:
            return {"page": "func", "title": response.css("title::text").get()}

        def none(self, response: Response) -> None:
            return None

        def one(self, response: Response) -> Any:
            return Row("one")

    items, recs, stats = run_spider(S())
    got = sorted(i["page"] if isinstance(i, dict) else i.page for i in items)
    assert got == ["agen", "coro", "func", "gen", "one"]
    assert {"page": "func", "title": "/func"} in items
    assert len(recs) == 7 and stats.ok == 7  # "/one" fetched once
    assert stats.items == {"scraped": 5}


def test_callback_errors_are_counted_and_the_crawl_goes_on(pages: PageServer) -> None:
    for p in ("/", "/a", "/b", "/c", "/d"):
        pages.add(p)
    base = pages.url

    class S(Spider):
        start_urls = [base + "/"]

        async def parse(self, response: Response) -> Any:
            yield {"ok": 1}
            yield response.follow("/a", callback=self.bad_output)
            yield Request("relative/page.html")  # not absolute: skipped, counted
            yield Request(base + "/c", callback="no_such_method")
            yield response.follow("/d", callback=self.raises)
            yield Request(base + "/b", self.parse)  # type: ignore[arg-type]  # positional
            yield {"never": 1}  # the error above ended this callback

        def bad_output(self, response: Response) -> Any:
            yield {"before": 1}
            yield 42
            yield {"after": 1}

        def raises(self, response: Response) -> Any:
            yield {"fine": 1}
            raise RuntimeError("after the yield")

    items, recs, stats = run_spider(S())
    by = {r.url.removeprefix(base): r for r in recs}
    assert by["/"].error == "callback_error" and "by keyword" in (by["/"].message or "")
    assert by["/a"].error == "callback_error" and "yielded int" in (by["/a"].message or "")
    assert by["/c"].error == "callback_error" and "no_such_method" in (by["/c"].message or "")
    assert by["/d"].error == "callback_error" and "RuntimeError" in (by["/d"].message or "")
    assert "/b" not in by
    assert sorted(map(str, items)) == sorted(map(str, [{"ok": 1}, {"before": 1}, {"after": 1},
                                                       {"fine": 1}]))
    assert stats.skipped["invalid_url"] == 1
    assert stats.errors == {"callback_error": 4}


def test_errbacks_get_failures_and_may_yield(pages: PageServer) -> None:
    pages.add("/robots.txt", body="User-agent: *\nDisallow: /private\n",
              content_type="text/plain")
    pages.add("/", links=["/gone", "/private/x", "/boom"])
    pages.add("/gone", status=404, body="no")
    pages.add("/boom", status=500, body="down")
    base = pages.url
    failures: list[Failure] = []

    class S(Spider):
        start_urls = [base + "/"]

        def parse(self, response: Response) -> Any:
            yield response.follow_all(css="a")
            yield Request("http://127.0.0.1:1/refused", errback=self.own_errback)

        def errback(self, failure: Failure) -> Any:
            failures.append(failure)
            yield {"failed": failure.request.url, "kind": failure.kind}

        def own_errback(self, failure: Failure) -> Any:
            failures.append(failure)

    items, _, stats = run_spider(S(), retries=0)
    kinds = {f.request.url.removeprefix(base): f.kind for f in failures}
    # A host nothing listens on: the errback hears so, not that robots.txt forbade it.
    assert kinds == {"/gone": "http_status", "/private/x": "robots_denied", "/boom": "http_status",
                     "http://127.0.0.1:1/refused": "connection_refused"}
    gone = next(f for f in failures if f.request.url.endswith("/gone"))
    assert gone.response is not None and gone.response.status == 404 and gone.response.text == "no"
    assert len(items) == 3  # the spider's errback yielded; own_errback did not
    assert stats.errors == {"connection_refused": 1, "http_status": 2, "robots_denied": 1}


def test_pipelines_in_order_drop_dedup_and_errors(pages: PageServer) -> None:
    pages.add("/")
    seen: list[str] = []

    def tag(item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        return {**item, "tagged": True}

    async def observe(item: dict[str, Any], spider: Spider) -> None:
        seen.append(item["k"])  # returns None: the item passes on unchanged

    def picky(item: dict[str, Any], spider: Spider) -> Any:
        if item["k"] == "drop":
            raise DropItem("not wanted")
        if item["k"] == "bug":
            raise KeyError("oops")
        return item

    class S(Spider):
        start_urls = [pages.url + "/"]
        pipelines = [Dedup("k"), tag, observe, picky]

        def parse(self, response: Response) -> Any:
            for k in ("a", "b", "a", "drop", "bug", "c"):
                yield {"k": k}

    items, recs, stats = run_spider(S())
    assert items == [{"k": k, "tagged": True} for k in ("a", "b", "c")]
    assert seen == ["a", "b", "drop", "bug", "c"]
    assert stats.items == {"scraped": 3, "dropped": 2, "pipeline_error": 1}
    assert recs[0].error == "pipeline_error" and "KeyError" in (recs[0].message or "")


def test_dont_filter_priority_depth_and_hooks(pages: PageServer) -> None:
    for p in ("/", "/low", "/high", "/mid", "/deep"):
        pages.add(p)
    base = pages.url
    events: list[str] = []

    class S(Spider):
        custom_settings = {"concurrency": 1, "per_host": 1, "depth": 1}

        async def opened(self) -> None:
            events.append("opened")

        def closed(self) -> None:
            events.append("closed")

        def start_requests(self) -> Iterator[Request]:  # a plain generator works too
            yield Request(base + "/")

        def parse(self, response: Response) -> Any:
            if response.url.endswith("/"):
                yield Request(base + "/low", priority=-1)
                yield Request(base + "/mid")
                yield Request(base + "/high", priority=5)
                yield Request(base + "/", dont_filter=True, callback=self.again)
                yield Request(base + "/", callback=self.again)  # filtered: seen
            else:
                yield Request(base + "/deep")  # depth 2: past the limit

        def again(self, response: Response) -> Any:
            events.append("again")

    _, _, stats = run_spider(S())
    fetched = [p for p in pages.paths() if p != "/robots.txt"]
    assert fetched == ["/", "/high", "/mid", "/", "/low"]
    assert events == ["opened", "again", "closed"]
    assert stats.skipped["depth"] == 3


def test_scope_any_by_default_allowed_domains_or_custom_scope(shop: ServerThread) -> None:
    other = shop.server.other_base_url
    if other is None:
        pytest.skip("127.0.0.2 cannot be bound here")
    base = shop.base_url

    def spider(**attrs: Any) -> Spider:
        class S(Spider):
            start_urls = [base + "/shop/echo"]

            def parse(self, response: Response) -> Any:
                yield {"url": response.url}
                yield Request(other + "/shop/echo?x")
                yield Request(base + "/shop/echo?y")

        for k, v in attrs.items():
            setattr(S, k, v)
        return S()

    items, recs, stats = run_spider(spider())
    assert len(items) == 3, [(r.url, r.error, r.message) for r in recs]
    # Both pages on 127.0.0.1 ask for the page on 127.0.0.2: two refusals.
    items, _, stats = run_spider(spider(allowed_domains=["127.0.0.1"]))
    assert len(items) == 2 and stats.skipped["scope"] == 2
    items, _, stats = run_spider(spider(custom_settings={"scope": "host"}))
    assert len(items) == 2 and stats.skipped["scope"] == 2


def echo_spider(shop: ServerThread, *requests: Request, **attrs: Any) -> list[dict[str, Any]]:
    class Echo(Spider):
        def start_requests(self) -> Iterator[Request]:
            yield from requests

        def parse(self, response: Response) -> Any:
            data = response.json()
            data["status"], data["url"] = response.status, response.url
            yield data
            if "next" in response.meta:
                yield Request(response.meta["next"])

    for k, v in attrs.items():
        setattr(Echo, k, v)
    items, recs, _ = run_spider(Echo())
    assert all(r.error is None for r in recs), [(r.url, r.error, r.message) for r in recs]
    return sorted(items, key=lambda d: d["path"])


def test_methods_bodies_and_redirects_as_browsers_do(shop: ServerThread) -> None:
    b = shop.base_url + "/shop/"
    got = echo_spider(shop, *(Request.form(f"{b}redirect/{s}", {"n": str(s)})
                              for s in (301, 302, 303, 307, 308)),
                      Request(b + "echo", method="put", body=b"raw", dont_filter=True))
    by_body = {(d["method"], d["body"]) for d in got}
    # 301/302/303 after a POST continue as a GET without the body; 307/308 keep both.
    assert ("POST", "n=307") in by_body and ("POST", "n=308") in by_body
    assert sum(1 for d in got if d["method"] == "GET" and d["body"] == "") == 3
    assert any(d["method"] == "PUT" and d["body"] == "raw" for d in got)
    for d in got:
        if d["method"] == "GET":
            assert "Content-Type" not in d["headers"]


def test_headers_cookies_and_auth(shop: ServerThread, pages: PageServer) -> None:
    b = shop.base_url + "/shop/"
    pages.add("/elsewhere", content_type="application/json",
              body=json.dumps({"path": "/elsewhere", "headers": {}}))
    got = echo_spider(
        shop,
        Request(b + "echo?1", headers={"X-Mine": "1"}, cookies={"c": "v"},
                meta={"next": pages.url + "/elsewhere"}),
        Request(b + "echo?2", auth=("u", "p")),
        custom_settings={"headers": {"X-Every": "yes"}, "http_auth": ("admin", "secret")},
    )
    one, two = got[1], got[2]
    assert one["headers"]["X-Mine"] == "1" and one["headers"]["X-Every"] == "yes"
    assert one["headers"]["Cookie"] == "c=v"
    assert one["headers"]["Authorization"] == "Basic YWRtaW46c2VjcmV0"  # the crawl's
    assert two["headers"]["Authorization"] == "Basic dTpw"  # the request's own
    # Credentials go only to the start requests' hosts, never to another host.
    hit = next(h for h in pages.log if h.path == "/elsewhere")
    assert "Authorization" not in hit.headers and hit.headers.get("X-Every") == "yes"


@pytest.mark.parametrize("cookies", [True, False])
def test_session_cookies_are_kept_unless_turned_off(shop: ServerThread, cookies: bool) -> None:
    b = shop.base_url + "/shop/"

    class Login(Spider):
        start_urls = [b + "login"]
        custom_settings = {"cookies": cookies}

        def parse(self, response: Response) -> Any:
            return response.submit("form#login", {"username": "reader",
                                                  "password": "open sesame"},
                                   callback=self.account)

        def account(self, response: Response) -> Any:
            return {"welcome": response.css(".welcome::text").get(), "url": response.url}

    items, recs, _ = run_spider(Login())
    if cookies:
        assert items == [{"welcome": "Welcome back, reader!", "url": b + "account"}]
    else:  # the account page sends us back to the login page, which was crawled already
        assert items == [] and recs[-1].status == 302


@pytest.fixture(scope="module")
def forward_proxy() -> Iterator[tuple[str, Path]]:
    """proxy.py, a real forward proxy, on 127.0.0.1 (its port read from --port-file)."""
    with tempfile.TemporaryDirectory() as d:
        port_file, log = Path(d) / "port", Path(d) / "proxy.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
                 "--port-file", str(port_file), "--num-workers", "1", "--num-acceptors", "1",
                 "--log-level", "INFO"],
                stdout=subprocess.DEVNULL, stderr=err)
            try:
                deadline = time.monotonic() + 20
                while not (port_file.exists() and port_file.read_text().strip()):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"proxy.py did not start: {log.read_text()[-500:]}")
                    time.sleep(0.05)
                yield f"http://127.0.0.1:{port_file.read_text().split()[0]}", log
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def test_requests_go_through_the_proxy(shop: ServerThread,
                                       forward_proxy: tuple[str, Path]) -> None:
    proxy, log = forward_proxy
    got = echo_spider(shop, Request(shop.base_url + "/shop/echo?via-proxy"),
                      custom_settings={"proxy": proxy})
    assert got[0]["path"] == "/shop/echo?via-proxy"
    # proxy.py's access log: a line per connection (naming its first request),
    # written when the connection closes.
    deadline = time.monotonic() + 5
    while f"127.0.0.1:{shop.port}/" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-1000:]
        time.sleep(0.05)
    # And a proxy that is not there fails the request: nothing goes around it.
    class S(Spider):
        start_urls = [shop.base_url + "/shop/echo?direct"]
        custom_settings = {"proxy": "http://127.0.0.1:1", "retries": 0, "obey_robots": False}

        def parse(self, response: Response) -> Any:
            return {"reached": True}

    items, recs, _ = run_spider(S())
    assert items == [] and recs[0].error == "proxy_error"


def test_callbacks_by_name() -> None:
    class S(Spider):
        def page(self, response: Response) -> None:
            return None

    s = S()
    assert S.name == "S" and s.callback_name(s.page) == "page"
    assert s.callback_name("page") == "page" and s.callback_name(None) is None
    with pytest.raises(ValueError, match="cannot be stored"):
        s.callback_name(lambda r: None)
    assert s.resolve("page", s.parse) == s.page and s.resolve(None, s.parse) == s.parse
    with pytest.raises(AttributeError, match="no method 'nope'"):
        s.resolve("nope", s.parse)
