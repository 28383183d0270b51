"""Exporters on real files: JSONL, CSV, SQLite, and WARC read back with warcio."""

from __future__ import annotations

import base64
import csv
import dataclasses
import gzip
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from loopcrawl import ConfigError, Field, Item, Request, Response, Settings, Spider, crawl
from loopcrawl.outputs import (
    CsvWriter,
    JsonlItems,
    SqliteWriter,
    WarcWriter,
    format_of,
    open_outputs,
)
from loopcrawl.spider.items import item_record
from loopcrawl.testsite import ServerThread

from .conftest import PageServer


class Book(Item):
    title = Field(css="h1")
    price = Field(css=".price", parse=float)
    tags = Field(css=".tag", many=True)


@dataclasses.dataclass
class Note:
    text: str
    n: int = 0


ITEMS: list[Any] = [Book(title="A, \"quoted\"", price=1.5, tags=["x", "y"]),
                    Book(title="Ünïcode\nline", price=None),
                    {"k": 1, "nested": {"a": [1, 2]}},
                    {"k": 2, "extra": True},
                    Note("n1", 3)]


def write_all(exporter: Any, items: list[Any]) -> None:
    for it in items:
        kind, fields, data = item_record(it)
        exporter.write_item(data, kind, fields)
    exporter.close()


def test_jsonl_items(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    write_all(JsonlItems(str(out)), ITEMS)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0] == {"title": 'A, "quoted"', "price": 1.5, "tags": ["x", "y"]}
    assert lines[2] == {"k": 1, "nested": {"a": [1, 2]}}
    assert lines[4] == {"text": "n1", "n": 3}


def test_csv_one_kind_of_item_per_file(tmp_path: Path) -> None:
    out = tmp_path / "items.csv"
    w = CsvWriter(str(out))
    write_all(w, ITEMS)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["title", "price", "tags"],
                    ['A, "quoted"', "1.5", '["x","y"]'],
                    ["Ünïcode\nline", "", "[]"]]
    assert w.ignored == 3  # the dicts and the dataclass: another kind of item



def test_sqlite_a_table_per_item_type(tmp_path: Path) -> None:
    out = tmp_path / "items.db"
    w = SqliteWriter(str(out), batch=2)
    write_all(w, ITEMS)
    con = sqlite3.connect(out)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"Book", "item", "Note"}
    assert con.execute("SELECT title, price, tags FROM Book").fetchall() == [
        ('A, "quoted"', 1.5, '["x","y"]'), ("Ünïcode\nline", None, "[]")]
    # A dict key no row had before adds a column.
    assert con.execute("SELECT k, nested, extra FROM item").fetchall() == [
        (1, '{"a":[1,2]}', None), (2, None, 1)]
    assert con.execute("SELECT text, n FROM Note").fetchall() == [("n1", 3)]
    con.close()
    # A second run adds rows to the same tables.
    write_all(SqliteWriter(str(out)), ITEMS[:1])
    con = sqlite3.connect(out)
    assert con.execute("SELECT count(*) FROM Book").fetchone() == (2 + 1,)
    con.close()


def test_format_by_extension_or_name(tmp_path: Path) -> None:
    assert [format_of(p) for p in ("a.jsonl", "-", "a.CSV", "a.sqlite3", "a.warc.gz",
                                   "a.json", "a.jsonl.gz", "a.parquet")] == [
        "jsonl", "jsonl", "csv", "sqlite", "warc", "json", "jsonl", "parquet"]
    assert format_of("a.out", "csv") == "csv"
    with pytest.raises(ConfigError, match="--format"):
        format_of("a.out")
    with pytest.raises(ConfigError, match="unknown format"):
        format_of("a.csv", "xml")
    with pytest.raises(ConfigError, match="needs a file"):
        open_outputs(["-"], fmt="sqlite")
    with pytest.raises(ConfigError, match="cannot write"):
        open_outputs([str(tmp_path / "missing" / "x.csv")])


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_warc_request_and_response_records_read_back(
        tmp_path: Path, shop: ServerThread, pages: PageServer, name: str) -> None:
    from warcio.archiveiterator import ArchiveIterator

    page = b"<html><h1>zipped</h1>" + b"x" * 2000 + b"</html>"
    pages.add("/gz", body=gzip.compress(page), headers={"Content-Encoding": "gzip"})
    b = shop.base_url + "/shop/"

    class S(Spider):
        def start_requests(self) -> Any:
            yield Request(b + "search", callback=self.search)
            yield Request(pages.url + "/gz", callback=self.ignore)

        def search(self, response: Response) -> Any:
            return response.submit(data={"q": "river"}, callback=self.ignore)

        def ignore(self, response: Response) -> None:
            return None

    out = tmp_path / name
    warc = WarcWriter(str(out))
    stats = crawl(Settings(timeout=10), spider=S(), exporters=[warc])
    warc.close()
    assert stats.ok == 3 and warc.count == 3
    if name.endswith(".gz"):
        assert out.read_bytes()[:2] == b"\x1f\x8b"
    records: list[dict[str, Any]] = []
    with out.open("rb") as fh:
        for rec in ArchiveIterator(fh, check_digests="raise"):
            body = rec.content_stream().read()
            h = rec.rec_headers
            records.append({"type": rec.rec_type, "uri": h.get_header("WARC-Target-URI"),
                            "id": h.get_header("WARC-Record-ID"),
                            "to": h.get_header("WARC-Concurrent-To"),
                            "digest": h.get_header("WARC-Payload-Digest"),
                            "version": h.protocol, "http": rec.http_headers, "body": body})
    assert {r["version"] for r in records} == {"WARC/1.1"}
    assert [r["type"] for r in records] == ["warcinfo"] + ["response", "request"] * 3
    for resp, req in zip(records[1::2], records[2::2], strict=True):
        assert req["to"] == resp["id"] and req["uri"] == resp["uri"]
        assert resp["digest"] == sha1_b32(resp["body"])  # the payload digest, checked by us too
        assert req["digest"] == sha1_b32(req["body"])
    by_uri = {r["uri"]: r for r in records if r["type"] == "response"}
    post = next(r for r in records if r["type"] == "request" and r["body"])
    assert post["http"].protocol == "POST" and b"q=river" in post["body"]
    assert b"token=" in post["body"]
    gz = by_uri[pages.url + "/gz"]
    # Stored decoded: the encoding header is renamed so replay does not inflate it again.
    assert gz["body"] == page
    assert gz["http"].get_header("X-Crawler-Content-Encoding") == "gzip"
    assert gz["http"].get_header("Content-Encoding") is None
    assert gz["http"].get_header("Content-Length") == str(len(page))
    assert gz["http"].get_statuscode() == "200"
