"""Requests, responses and fetch records: pure data, no I/O."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from xxhash import xxh3_64_intdigest as _xxh3

from .encoding import decode_text
from .urls import canonicalize, fingerprint

if TYPE_CHECKING:
    from parsel import Selector, SelectorList

__all__ = ["Failure", "FetchRecord", "Request", "Response", "check_header"]

_NEVER = float("inf")  # the deadline of a lease that does not expire

# Control characters other than tab, as aiohttp refuses them: header injection.
BAD_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search


def check_header(name: str, value: str) -> None:
    """Refuse a header that could smuggle another one (CR, LF) or a control
    character: settings check the crawl's headers with it, the pool each request's."""
    if BAD_HEADER(name) or BAD_HEADER(value) or ":" in name or not name:
        raise ValueError(f"header {name!r} holds a line break or a control character")

# A spider callback: called with a Response (or an errback with a Failure), it
# returns or yields Requests, items and None; see ``spider.py``.
Callback = Callable[..., Any | Awaitable[Any]]


@dataclass(slots=True, init=False)
class Request:
    """One request to make.

    The engine's own requests carry a canonical ``url`` (see
    ``urls.canonicalize``); a spider's may carry any absolute URL, and the
    engine canonicalizes it before queueing. The fields after ``meta`` are
    for spiders: pass them by keyword (``Request(url, callback=self.parse)``).
    """

    url: str
    depth: int
    referrer: str | None
    method: str
    priority: int  # higher is leased sooner (the memory frontier; FIFO within one)
    retries: int  # attempts already made and failed
    fp: int  # fingerprint of (method, url, body); computed when left 0
    # None rather than an empty dict (see __init__); ``Response.meta`` creates it.
    meta: dict[str, Any] | None
    # A spider method (stored by name when persisted: see ``Spider.callback_name``),
    # any callable, a method name, or None for ``Spider.parse``.
    callback: Callback | str | None
    errback: Callback | str | None  # called with a ``Failure``
    cb_kwargs: dict[str, Any] | None  # extra keyword arguments of the callback
    headers: dict[str, str] | None
    body: bytes
    cookies: dict[str, str] | None  # sent with this request only
    auth: tuple[str, str] | None  # HTTP basic auth (user, password), this request only
    dont_filter: bool  # queue it even if its fingerprint was seen
    # Set by ``Frontier.lease``: the lease's token (0: not leased) and the Unix
    # time by which it must be acked, released or extended (inf: never expires).
    lease: int = field(compare=False, repr=False)
    lease_deadline: float = field(compare=False, repr=False)

    # Written out rather than generated: the engine builds a Request for every
    # link it finds (thousands a second, most of them seen already), and a
    # plain positional signature with constant defaults and the fingerprint
    # inline costs less than the generated __init__ and its __post_init__ call
    # (keyword-only defaults would cost a dict lookup each).
    def __init__(
        self,
        url: str,
        depth: int = 0,
        referrer: str | None = None,
        method: str = "GET",
        priority: int = 0,
        retries: int = 0,
        fp: int = 0,
        meta: dict[str, Any] | None = None,
        callback: Callback | str | None = None,
        errback: Callback | str | None = None,
        cb_kwargs: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        cookies: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        dont_filter: bool = False,
    ) -> None:
        self.url = url
        self.depth = depth
        self.referrer = referrer
        self.method = method
        self.priority = priority
        self.retries = retries
        self.meta = meta
        self.callback = callback
        self.errback = errback
        self.cb_kwargs = cb_kwargs
        self.headers = headers
        self.body = body
        self.cookies = cookies
        self.auth = auth
        self.dont_filter = dont_filter
        self.lease = 0
        self.lease_deadline = _NEVER
        self.fp = fp or (_xxh3(url.encode()) if method == "GET" and not body
                         else fingerprint(url, method, body))

    @classmethod
    def form(
        cls,
        url: str,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        method: str = "POST",
        **kwargs: Any,
    ) -> Request:
        """A form submission: ``data`` url-encoded into the body (POST) or the
        query string (GET), as a browser sends an ``application/x-www-form-urlencoded``
        form. A value that is a list or tuple is sent once per element."""
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
        encoded = urlencode([(k, v) for k, vs in pairs
                             for v in (vs if isinstance(vs, list | tuple) else [vs])])
        method = method.upper()
        if method == "GET":
            base = url.split("#", 1)[0].split("?", 1)[0]
            return cls(f"{base}?{encoded}" if encoded else base, method="GET", **kwargs)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   **(kwargs.pop("headers", None) or {})}
        return cls(url, method=method, body=encoded.encode(), headers=headers, **kwargs)


@dataclass(slots=True)
class FetchRecord:
    """What became of one request: a page, or a failure with its kind.

    Every request the engine takes ends as exactly one record; the output
    and the summary are both built from these.
    """

    url: str
    depth: int
    referrer: str | None
    fetched_at: float  # Unix time the request started
    final_url: str | None = None
    status: int | None = None
    title: str | None = None
    content_type: str | None = None
    bytes: int = 0
    elapsed_ms: float = 0.0
    links: int = 0  # distinct crawlable links found on the page
    redirects: int = 0
    error: str | None = None  # a kind from ``errors`` (timeout, too_large, ...)
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "depth": self.depth,
            "referrer": self.referrer,
            "title": self.title,
            "content_type": self.content_type,
            "bytes": self.bytes,
            "fetched_at": round(self.fetched_at, 3),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "links": self.links,
        }
        if self.redirects:
            d["redirects"] = self.redirects
        if self.error is not None:
            d["error"] = self.error
            d["message"] = self.message
        return d


class Response:
    """A fetched page as a spider sees it.

    ``text``, ``selector`` and the base URL are computed on first use and
    kept, so a callback that only reads ``json()`` never parses HTML.
    """

    __slots__ = ("_base_url", "_encoding", "_selector", "_text", "body", "headers", "request",
                 "status", "url")

    def __init__(
        self,
        url: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        request: Request | None = None,
    ) -> None:
        self.url = url  # the final URL, after redirects
        self.status = status
        # Case-insensitive, and a name may repeat (Set-Cookie).
        self.headers: CIMultiDictProxy[str] = (
            headers if isinstance(headers, CIMultiDictProxy)
            else CIMultiDictProxy(CIMultiDict(headers or {})))
        self.body = body
        self.request = request if request is not None else Request(url)
        self._text: str | None = None
        self._encoding: str | None = None
        self._selector: Any = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"

    @property
    def meta(self) -> dict[str, Any]:
        """The request's ``meta`` (the same dict: what a callback writes, a
        request built from it with ``meta=response.meta`` carries on)."""
        if self.request.meta is None:
            self.request.meta = {}
        return self.request.meta

    @property
    def content_type(self) -> str:
        """The media type alone, lower-case ("" when the server sent none)."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()

    @property
    def text(self) -> str:
        """The body decoded as a browser would: the Content-Type charset, a
        byte-order mark, ``<meta charset>``/``http-equiv``, then detection.
        Invalid bytes become U+FFFD; this never raises."""
        if self._text is None:
            self._encoding, self._text = decode_text(self.body,
                                                     self.headers.get("Content-Type"))
        return self._text

    @property
    def encoding(self) -> str:
        """The name of the encoding ``text`` was decoded with."""
        if self._encoding is None:
            _ = self.text
        assert self._encoding is not None
        return self._encoding

    def json(self) -> Any:
        """The body parsed as JSON (UTF-8 fast path; other encodings via ``text``)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return orjson.loads(self.text)

    @property
    def selector(self) -> Selector:
        """A ``parsel.Selector`` over the page (built once, on first use)."""
        if self._selector is None:
            from parsel import Selector

            kind = "xml" if self.content_type.endswith(("/xml", "+xml")) and (
                self.content_type != "application/xhtml+xml") else "html"
            self._selector = Selector(text=self.text, type=kind, base_url=self.url)
        sel: Selector = self._selector
        return sel

    def css(self, query: str) -> SelectorList[Selector]:
        """``parsel`` CSS selection, with its ``::text`` and ``::attr(name)``."""
        return self.selector.css(query)

    def xpath(self, query: str, **variables: Any) -> SelectorList[Selector]:
        """``parsel`` XPath selection; ``$name`` variables from keyword arguments."""
        return self.selector.xpath(query, **variables)

    @property
    def base_url(self) -> str:
        """What relative links on the page are relative to: ``<base href>`` or the URL."""
        if self._base_url is None:
            base = self.url
            if "html" in self.content_type or not self.content_type:
                from w3lib.html import get_base_url

                base = get_base_url(self.text, self.url)
            self._base_url = base
        return self._base_url

    def urljoin(self, href: str) -> str:
        """``href`` made absolute against the page's base URL (not canonicalized)."""
        from urllib.parse import urljoin

        return urljoin(self.base_url, href.strip())

    def follow(self, href: str | Selector, callback: Callback | str | None = None,
               **kwargs: Any) -> Request:
        """A Request for a link on this page: an href (relative or absolute), or
        a selector of an ``<a>``/``<link>``/``<area>`` (its href) or element with a
        ``src``. Raises ValueError for one that is not an http(s) URL."""
        url = self._link_url(href)
        if url is None:
            raise ValueError(f"not a followable http(s) link: {href!r}")
        kwargs.setdefault("referrer", self.url)
        return Request(url, callback=callback, **kwargs)

    def follow_all(
        self,
        hrefs: Iterable[str | Selector] | None = None,
        callback: Callback | str | None = None,
        *,
        css: str | None = None,
        xpath: str | None = None,
        **kwargs: Any,
    ) -> list[Request]:
        """Requests for several links: ``hrefs``, or the elements ``css`` or
        ``xpath`` select (as in ``follow``). Links that are not http(s) URLs
        (``mailto:``, ``javascript:``) are left out."""
        if sum(x is not None for x in (hrefs, css, xpath)) != 1:
            raise ValueError("follow_all() takes exactly one of hrefs, css= or xpath=")
        items: Iterable[str | Selector]
        if css is not None:
            items = self.css(css)
        elif xpath is not None:
            items = self.xpath(xpath)
        else:
            assert hrefs is not None
            items = hrefs
        kwargs.setdefault("referrer", self.url)
        return [Request(u, callback=callback, **kwargs)
                for h in items if (u := self._link_url(h)) is not None]

    def submit(
        self,
        css: str = "form",
        data: Mapping[str, Any] | None = None,
        callback: Callback | str | None = None,
        **kwargs: Any,
    ) -> Request:
        """Submit the first form that ``css`` selects, as a browser would: its
        ``action`` and ``method``, the values its fields already have (hidden
        inputs, checked boxes, selected options), then ``data`` on top (a None
        value leaves a field out). Only url-encoded forms (no file uploads)."""
        forms = self.css(css)
        if not forms:
            raise ValueError(f"no form matches {css!r} on {self.url}")
        form = forms[0]
        action = form.attrib.get("action", "").strip()
        url = self.urljoin(action) if action else self.url
        method = (form.attrib.get("method") or "GET").upper()
        values = _form_values(form)
        for k, v in (data or {}).items():  # replace in place: the order is the form's
            at = next((i for i, (n, _) in enumerate(values) if n == k), len(values))
            values = [(n, x) for n, x in values if n != k]
            if v is not None:
                values.insert(at, (k, v))
        kwargs.setdefault("referrer", self.url)
        return Request.form(url, values, method="GET" if method == "GET" else "POST",
                            callback=callback, **kwargs)

    def _link_url(self, href: str | Selector) -> str | None:
        if isinstance(href, str):
            return canonicalize(href, self.base_url)
        root = href.root
        if not isinstance(root, str):  # an element: its href, else its src
            root = root.get("href") if root.get("href") is not None else root.get("src")
            if root is None:
                return None
        return canonicalize(root, self.base_url)


def _form_values(form: Selector) -> list[tuple[str, str]]:
    """The name/value pairs a form would submit untouched (HTML §4.10.21.4)."""
    out: list[tuple[str, str]] = []
    for el in form.xpath(".//input[@name] | .//select[@name] | .//textarea[@name]"):
        root = el.root
        if root.get("disabled") is not None:
            continue
        name = root.get("name")
        tag = root.tag
        if tag == "input":
            kind = (root.get("type") or "text").lower()
            if kind in ("submit", "image", "button", "reset", "file"):
                continue
            if kind in ("checkbox", "radio") and root.get("checked") is None:
                continue
            out.append((name, root.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "textarea":
            out.append((name, el.xpath("string()").get() or ""))
        else:
            options = el.xpath(".//option")
            chosen = [o for o in options if o.root.get("selected") is not None]
            if not chosen and options and root.get("multiple") is None:
                chosen = options[:1]
            for o in chosen:
                v = o.root.get("value")
                out.append((name, v if v is not None else (o.xpath("string()").get() or "").strip()))
    return out


@dataclass(slots=True)
class Failure:
    """Why a spider's request gave no callback: what the errback receives.

    ``kind`` is the failure kind of the fetch record (``timeout``,
    ``http_status``, ``robots_denied``, ...); ``response`` is there when the
    server answered (an HTTP error status).
    """

    request: Request
    kind: str
    message: str
    response: Response | None = None
