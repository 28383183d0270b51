"""Spiders: the user's callbacks, declarative items and pipelines.

``base`` (``Spider``, ``load_spider``), ``items`` (``Item``, ``Field``),
``pipelines`` (``Dedup``, ``DropItem``); ``run`` is the engine's page handler
for a spider crawl.
"""

from __future__ import annotations

from .base import Spider, load_spider
from .items import AttrField, Field, Item, TextField
from .pipelines import Dedup, DropItem

__all__ = ["AttrField", "Dedup", "DropItem", "Field", "Item", "Spider", "TextField", "load_spider"]
