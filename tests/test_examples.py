"""The spiders in examples/, run as a user runs them (``loopcrawl run``) against
the test site's shop, and checked against the shop's ground truth."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopcrawl.testsite import ServerThread
from loopcrawl.testsite.shop import Shop

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def loopcrawl(*args: str, shop: ServerThread | None = None, stdin: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if shop is not None:
        env["SHOP_URL"] = shop.base_url + "/shop/"
    return subprocess.run([sys.executable, "-m", "loopcrawl", *args], capture_output=True,
                          text=True, env=env, input=stdin, timeout=timeout, cwd=ROOT)


def run_example(name: str, shop: ServerThread, tmp_path: Path, *extra: str) -> list[Any]:
    out = tmp_path / f"{name}.jsonl"
    p = loopcrawl("run", str(EXAMPLES / f"{name}.py"), "-o", str(out), "-q", *extra, shop=shop)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def truth(shop: ServerThread) -> Shop:
    return shop.server.shop


def test_books_listing_to_detail_with_pagination(shop: ServerThread, tmp_path: Path) -> None:
    items = run_example("books", shop, tmp_path)
    books = truth(shop).books
    assert len(items) == len(books) == 300
    got = {it["upc"]: it for it in items}
    for b in books:
        it = got[b.upc]
        assert (it["title"], it["price"], it["stock"], it["rating"], it["category"]) == (
            b.title, float(b.price), b.stock, b.rating, b.category)
        assert it["description"] == b.description
        assert it["url"] == shop.base_url + b.path
        assert [(r["author"], r["stars"], r["text"]) for r in it["reviews"]] == [
            (r.author, r.stars, r.text) for r in b.reviews]


def test_search_form_post(shop: ServerThread, tmp_path: Path) -> None:
    items = run_example("search", shop, tmp_path)
    expected = truth(shop).search("river")
    assert expected and [it["title"] for it in items] == [b.title for b in expected]
    assert [it["url"] for it in items] == [shop.base_url + b.path for b in expected]
    assert [it["price"] for it in items] == [float(b.price) for b in expected]


def test_categories_as_dataclasses_across_pages(shop: ServerThread, tmp_path: Path) -> None:
    items = run_example("categories", shop, tmp_path)
    t = truth(shop)
    assert {it["name"]: it["titles"] for it in items} == {
        name: [b.title for b in t.in_category(name)] for _, name in t.categories}
    assert all(it["books"] == len(it["titles"]) for it in items)


def test_legacy_encodings(shop: ServerThread, tmp_path: Path) -> None:
    items = run_example("legacy", shop, tmp_path)
    t = truth(shop)
    for page in ("cp1251", "gbk"):
        assert [it["title"] for it in items if it["page"] == page] == t.legacy_titles(page)
    assert {it["encoding"] for it in items} == {"cp1251", "gb18030"}


def test_login_cookie_basic_auth_and_json_api(shop: ServerThread, tmp_path: Path) -> None:
    items = run_example("account", shop, tmp_path)
    by_kind: dict[str, list[Any]] = {}
    for it in items:
        by_kind.setdefault(it["kind"], []).append(it)
    assert by_kind["account"] == [{"kind": "account", "url": shop.base_url + "/shop/account",
                                   "welcome": "Welcome back, reader!"}]
    assert by_kind["admin"] == [{"kind": "admin", "report": "Stock report"}]
    assert sorted(it["id"] for it in by_kind["api"]) == [b.id for b in truth(shop).books]


def test_several_outputs_and_settings_from_the_command_line(
        shop: ServerThread, tmp_path: Path) -> None:
    csv_out, db, warc = tmp_path / "b.csv", tmp_path / "b.db", tmp_path / "b.warc.gz"
    p = loopcrawl("run", str(EXAMPLES / "books.py"), "-o", str(csv_out), "-o", str(db),
                  "-o", str(warc), "-s", "max_pages=6", "-s", "concurrency=2", shop=shop)
    assert p.returncode == 0, p.stderr
    assert "items  scraped: " in p.stderr and str(db) in p.stderr  # the summary
    rows = csv_out.read_text(encoding="utf-8").splitlines()
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM Book").fetchone()[0]
    con.close()
    assert n == len(rows) - 1 and 0 < n <= 5  # 6 pages: the listing and at most 5 books
    assert warc.stat().st_size > 1000


@pytest.mark.parametrize(("source", "message"), [
    ("x = (\n", "does not import: SyntaxError"),
    ("import os\n", "defines no Spider subclass"),
    ("raise RuntimeError('at import')\n", "does not import: RuntimeError: at import (line 1)"),
    ("from loopcrawl import Spider\nclass A(Spider): pass\nclass B(Spider): pass\n",
     "defines several spiders (A, B)"),
])
def test_a_bad_spider_file_is_one_line_and_exit_2(tmp_path: Path, source: str,
                                                  message: str) -> None:
    f = tmp_path / "spider.py"
    f.write_text(source)
    p = loopcrawl("run", str(f))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_bad_options_exit_2(tmp_path: Path) -> None:
    books = str(EXAMPLES / "books.py")
    for args, message in [(("-s", "concurrency=many"), "concurrency=many"),
                          (("-s", "nonsense=1"), "-s nonsense: unknown setting"),
                          (("-o", str(tmp_path / "x.txt")), "--format"),
                          (("-o", str(tmp_path / "no" / "x.csv")), "does not exist")]:
        p = loopcrawl("run", books, *args)
        assert p.returncode == 2 and message in p.stderr, (args, p.stderr)
    assert loopcrawl("run", str(tmp_path / "missing.py")).returncode == 2


def test_shell_has_the_response_loaded(shop: ServerThread) -> None:
    b = truth(shop).book(3)
    commands = ("print('status', response.status)\n"
                "print('title', response.css('h1::text').get())\n"
                "r = fetch(response.urljoin('/shop/legacy/cp1251.html'))\n"
                "print('h1', response.css('h1::text').get(), response.encoding)\n")
    p = loopcrawl("shell", shop.base_url + b.path, stdin=commands)
    assert p.returncode == 0, p.stderr
    assert "status 200" in p.stdout and f"title {b.title}" in p.stdout
    assert "h1 Новинки cp1251" in p.stdout
    assert "loopcrawl shell" in p.stderr  # the banner
    p = loopcrawl("shell", "http://127.0.0.1:1/", stdin="")
    assert p.returncode == 1 and "loopcrawl: error:" in p.stderr
