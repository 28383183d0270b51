"""Item pipelines: an ordered list of callables every item passes through.

    class Shop(Spider):
        pipelines = [Dedup("upc"), add_currency, store_in_db]

Each pipeline is called as ``pipeline(item, spider)``, sync or async. It
returns the item (or a replacement) to pass it on, or None to pass it on
unchanged; it raises ``DropItem`` to drop it. Order is list order: there are
no priority numbers to reconcile. A pipeline that raises anything else has
its item dropped too, logged with the page's URL and counted as a
``pipeline_error``; the crawl goes on.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DropItem
from .items import Item

if TYPE_CHECKING:
    from .base import Pipeline, Spider

__all__ = ["Dedup", "DropItem", "Pipeline", "run_pipelines"]


def field_value(item: Any, name: str) -> Any:
    """``name`` of an Item, a dict or a dataclass (None when absent)."""
    if isinstance(item, dict):
        return item.get(name)
    if isinstance(item, Item) or dataclasses.is_dataclass(item):
        return getattr(item, name, None)
    raise TypeError(f"not an item: {type(item).__name__}")


def _hashable(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set):
        return tuple(_hashable(v) for v in value)
    return value  # type: ignore[no-any-return]


class Dedup:
    """Drop an item whose key fields equal an earlier item's.

    ``Dedup("upc")`` or ``Dedup("title", "author")``. The keys of one crawl
    are kept in memory (one tuple per distinct item).
    """

    def __init__(self, *fields: str) -> None:
        if not fields:
            raise TypeError("Dedup needs at least one field name")
        self.fields = fields
        self._seen: set[Hashable] = set()

    def __call__(self, item: Any, spider: Spider | None = None) -> Any:
        key = tuple(_hashable(field_value(item, f)) for f in self.fields)
        if key in self._seen:
            raise DropItem(f"duplicate {', '.join(self.fields)}: {key if len(key) > 1 else key[0]!r}")
        self._seen.add(key)
        return item


async def run_pipelines(pipelines: Sequence[Pipeline], item: Any, spider: Spider) -> Any:
    """``item`` after every pipeline, in order; raises what a pipeline raises."""
    for p in pipelines:
        result = p(item, spider)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            item = result
    return item
