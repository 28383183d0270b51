"""Declarative items: fields read from a page by CSS or XPath.

    class Review(Item):
        author = Field(css=".author")
        stars = Field(css=".stars", attr="data-stars", parse=int)

    class Book(Item):
        target = "article.book"                  # one item per match
        title = Field(css="h3 a", attr="title")
        price = Field(css=".price", re=r"[\\d.]+", parse=float)
        tags = Field(css=".tags a", many=True)
        reviews = Field(css="li.review", item=Review, many=True)

    Book.all(response)   # -> [Book, ...]: one per <article class="book">
    Book.one(response)   # -> the first, or None

A field's value is the text of what its selector matches (whitespace
collapsed), or an attribute (``attr=``), or the string an XPath/``::text``/
``::attr()`` selector returns; then ``re=`` keeps a match (its first group if
it has one), then ``parse=`` converts it. A field that cannot be read (no
match for a ``required`` field, a regex that does not match, ``parse``
raising) gets its ``default`` and an entry in the item's ``errors``: a page
whose layout changed yields items with errors, counted by the crawl, never an
exception in the callback.

Selectors are compiled when the class is defined, so a typo in one is an
error at import, not on the thousandth page.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from parsel import Selector

    from ..http import Response

__all__ = ["AttrField", "Field", "Item", "TextField", "item_record"]

_RESERVED = frozenset(("all", "one", "errors", "to_dict", "fields", "target", "target_xpath",
                       "from_selector"))


def _css_to_xpath(css: str) -> str:
    from parsel.csstranslator import HTMLTranslator

    return HTMLTranslator().css_to_xpath(css)


def _check_xpath(xpath: str) -> str:
    from lxml import etree

    etree.XPath(xpath)  # raises XPathSyntaxError
    return xpath


class Field:
    """One value of an item, read by ``css`` or ``xpath`` within the item's element.

    ``attr``: an attribute instead of the text. ``re``: keep the first match
    (group 1 if the pattern has a group). ``parse``: convert the string
    (``float``, a date parser, ...). ``many``: a list of every match instead
    of the first. ``item``: an Item class read from each match (nested items).
    ``required``: no match is an error, not just the default. A field with
    neither selector is filled by hand: ``Book(url=response.url, ...)``.
    XPath in an item is relative to its element only when it starts with
    ``.``: write ``.//h3``, not ``//h3``.
    """

    __slots__ = ("_query", "attr", "css", "default", "item", "many", "name", "parse", "pattern",
                 "required", "xpath")

    def __init__(
        self,
        css: str | None = None,
        *,
        xpath: str | None = None,
        attr: str | None = None,
        re: str | None = None,
        parse: Callable[[str], Any] | None = None,
        default: Any = None,
        many: bool = False,
        required: bool = False,
        item: type[Item] | None = None,
    ) -> None:
        if css is not None and xpath is not None:
            raise TypeError("a Field takes css= or xpath=, not both")
        self.css = css
        self.xpath = xpath
        self.attr = attr
        self.pattern = _compile_re(re) if re is not None else None
        self.parse = parse
        self.default = default
        self.many = many
        self.required = required
        self.item = item
        self.name = ""
        self._query: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _compile(self, where: str) -> None:
        """Check and compile the selector (``Item.__init_subclass__``: errors at import)."""
        if self.name in _RESERVED:
            raise TypeError(f"{where}: {self.name!r} is a reserved name on items")
        try:
            if self.css is not None:
                self._query = _css_to_xpath(self.css)
            elif self.xpath is not None:
                self._query = _check_xpath(self.xpath)
        except Exception as e:
            raise ValueError(f"{where}: bad selector "
                             f"{self.css if self.css is not None else self.xpath!r}: {e}") from None

    def __get__(self, obj: Item | None, owner: type | None = None) -> Any:
        # Only reached when the instance has no value of its own.
        if obj is None:
            return self
        return self._empty()

    def _empty(self) -> Any:
        if self.many and self.default is None:
            return []
        return self.default

    def __repr__(self) -> str:
        sel = f"css={self.css!r}" if self.css is not None else f"xpath={self.xpath!r}"
        return f"{type(self).__name__}({sel})"

    # -- reading -----------------------------------------------------------
    def extract(self, scope: Selector, errors: dict[str, str]) -> Any:
        """This field's value within ``scope``; problems go into ``errors``."""
        if self._query is None:
            matches = [scope] if self.item is not None else []
        else:
            matches = scope.xpath(self._query)
        if self.item is not None:
            return self._nested(matches, errors)
        if not self.many:
            for sel in matches:
                raw = self._raw(sel)
                if raw is not None:
                    return self._convert(raw, self.name, errors)
            if self.required:
                errors[self.name] = "missing: nothing matched"
            return self._empty()
        out: list[Any] = []
        for i, sel in enumerate(matches):
            raw = self._raw(sel)
            if raw is None:
                continue
            v = self._convert(raw, f"{self.name}[{i}]", errors, keep=_SKIP)
            if v is not _SKIP:
                out.append(v)
        if not out and self.required:
            errors[self.name] = "missing: nothing matched"
        return out if out or self.default is None else self.default

    def _raw(self, sel: Selector) -> str | None:
        root = sel.root
        if isinstance(root, str):
            return root.strip()
        if isinstance(root, int | float):  # an XPath number or boolean: count(), ...
            return str(root)
        if self.attr is not None:
            v = root.get(self.attr) if hasattr(root, "get") else None
            return v.strip() if v is not None else None
        text = sel.xpath("string()").get() or ""
        return " ".join(text.split())

    def _convert(self, raw: str, where: str, errors: dict[str, str], keep: Any = None) -> Any:
        value: Any = raw
        if self.pattern is not None:
            m = self.pattern.search(raw)
            if m is None:
                errors[where] = f"no match for {self.pattern.pattern!r} in {raw[:80]!r}"
                return self.default if keep is None else keep
            value = m.group(1) if self.pattern.groups else m.group(0)
        if self.parse is not None:
            try:
                value = self.parse(value)
            except Exception as e:
                errors[where] = f"{type(e).__name__}: {e}"
                return self.default if keep is None else keep
        return value

    def _nested(self, matches: Any, errors: dict[str, str]) -> Any:
        assert self.item is not None
        found = []
        for i, sel in enumerate(matches if self.many else matches[:1]):
            it = self.item.from_selector(sel)
            prefix = f"{self.name}[{i}]" if self.many else self.name
            for k, msg in it.errors.items():
                errors[f"{prefix}.{k}"] = msg
            found.append(it)
        if self.many:
            return found
        if not found:
            if self.required:
                errors[self.name] = "missing: nothing matched"
            return self.default
        return found[0]


class _Skip:
    pass


_SKIP = _Skip()


def _compile_re(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad re= pattern {pattern!r}: {e}") from None


class TextField(Field):
    """A field whose value is the matched element's text (what ``Field`` reads by default)."""

    __slots__ = ()


class AttrField(Field):
    """A field whose value is an attribute of the matched element."""

    __slots__ = ()

    def __init__(self, css: str | None = None, *, attr: str, **kwargs: Any) -> None:
        super().__init__(css, attr=attr, **kwargs)


class Item:
    """A record with declared fields; subclass it and declare ``Field``s.

    ``target`` (CSS) or ``target_xpath`` selects the element of each item on
    a page; without one an item is read from the whole page. Build one by
    hand as ``Book(title="...", price=1.0)``. ``errors`` maps a field (or
    ``reviews[2].stars``) to what went wrong reading it.
    """

    target: ClassVar[str | None] = None
    target_xpath: ClassVar[str | None] = None
    fields: ClassVar[dict[str, Field]] = {}
    _target_query: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    if klass is cls:
                        value._compile(f"{cls.__name__}.{name}")
                    fields[name] = value
        cls.fields = fields
        try:
            if cls.target is not None and cls.target_xpath is not None:
                raise TypeError("give target (CSS) or target_xpath, not both")
            if cls.target is not None:
                cls._target_query = _css_to_xpath(cls.target)
            elif cls.target_xpath is not None:
                cls._target_query = _check_xpath(cls.target_xpath)
            else:
                cls._target_query = None
        except Exception as e:
            raise ValueError(f"{cls.__name__}.target: {e}") from None

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        self.__dict__.update(values)
        self.errors: dict[str, str] = {}

    # -- reading from pages --------------------------------------------------
    @classmethod
    def from_selector(cls, scope: Selector) -> Self:
        """The item read from ``scope`` (an element, or a whole page)."""
        errors: dict[str, str] = {}
        values = {name: f.extract(scope, errors) for name, f in cls.fields.items()}
        item = cls(**values)
        item.errors = errors
        return item

    @classmethod
    def all(cls, source: Response | Selector) -> list[Self]:
        """One item per element ``target`` matches (the page as one item without a target)."""
        sel = _selector(source)
        if cls._target_query is None:
            return [cls.from_selector(sel)]
        return [cls.from_selector(s) for s in sel.xpath(cls._target_query)]

    @classmethod
    def one(cls, source: Response | Selector) -> Self | None:
        """The first item on the page, or None when ``target`` matches nothing."""
        sel = _selector(source)
        if cls._target_query is None:
            return cls.from_selector(sel)
        matches = sel.xpath(cls._target_query)
        return cls.from_selector(matches[0]) if matches else None

    # -- as data ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fields in declaration order; nested items as dicts."""
        return {name: _plain(getattr(self, name)) for name in self.fields}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Item)
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.fields)
        return f"{type(self).__name__}({inner})"


def _selector(source: Response | Selector) -> Selector:
    from ..http import Response

    return source.selector if isinstance(source, Response) else source


def _plain(value: Any) -> Any:
    """``value`` as JSON-compatible data: what every exporter writes."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Item):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return str(value)


def is_item(obj: object) -> bool:
    """True for what a callback may yield as an item: an Item, a dict, a dataclass."""
    return isinstance(obj, Item | dict) or (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type))


def item_record(obj: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """(type name, declared fields or None, JSON-compatible dict) of an item.

    The type name names a SQLite table; declared fields (an Item's, a
    dataclass's) fix the columns, a dict's keys are its own.
    """
    if isinstance(obj, Item):
        return type(obj).__name__, tuple(obj.fields), obj.to_dict()
    if isinstance(obj, dict):
        return "item", None, _plain(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = tuple(f.name for f in dataclasses.fields(obj))
        return type(obj).__name__, names, _plain(obj)
    raise TypeError(f"not an item: {type(obj).__name__} (expected an Item, a dict or a dataclass)")
