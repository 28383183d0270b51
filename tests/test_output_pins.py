"""Output promises that make mutate found unpinned (docs/testing.md): the
exact bytes and warnings of the CSV writer, and how it adds to a file."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from loopcrawl import ConfigError
from loopcrawl.outputs import CsvWriter, JsonlWriter, JsonWriter, WarcWriter


def test_csv_cells_columns_and_the_warnings_that_leave_keys_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Booleans are ``true``/``false``; declared fields are the columns even
    when the first item lacks some; what a CSV cannot hold is named, once."""
    path = tmp_path / "items.csv"
    caplog.set_level(logging.WARNING, "loopcrawl.outputs")
    w = CsvWriter(str(path))
    fields = ("page title", "ok", "bad", "MAX")
    w.write_item({"ok": True, "bad": False, "MAX": 3}, "Book", fields)
    w.write_item({"page title": "b", "ok": False, "bad": True, "extra": 1}, "Book", fields)
    w.write_item({"x": 1}, "item", None)
    w.write_item({"x": 2}, "item", None)
    w.write_item({"x": 3}, "Author", None)
    w.close()
    assert path.read_bytes() == (b"page title,ok,bad,MAX\r\n,true,false,3\r\n"
                                 b"b,false,true,\r\n")
    head = f"{path}: a CSV file has one header (columns: page title, ok, bad, MAX); leaving out "
    tail = " (JSONL, JSON and SQLite keep every key)"
    assert [r.getMessage() for r in caplog.records] == [
        head + "the key 'extra' of Book items (not a column)" + tail,
        head + "item items (the file holds Book items)" + tail,
        head + "Author items (the file holds Book items)" + tail,
    ]
    assert (w.count, w.ignored) == (2, 4)

    # -o adds rows under the header the file has: its columns, as they are.
    w = CsvWriter(str(path), append=True)
    w.write_item({"page title": "c", "MAX": 4}, "Book", None)
    w.close()
    assert path.read_bytes().endswith(b"b,false,true,\r\nc,,,4\r\n")


def test_csv_reads_the_header_it_adds_under_as_written(tmp_path: Path) -> None:
    """A header that is not UTF-8, or whose last column ends in a space, is
    kept as it is (the bad byte as U+FFFD); the rows follow its columns."""
    path = tmp_path / "theirs.csv"
    path.write_bytes(b"\xff name,trail \r\n1,2\r\n")
    w = CsvWriter(str(path), append=True)
    w.write_item({"trail ": "b", "\ufffd name": "a"}, "item", None)
    w.close()
    assert path.read_bytes() == b"\xff name,trail \r\n1,2\r\na,b\r\n"


@pytest.mark.parametrize("content", [b"\nname\r\n", b"\r\n"], ids=["blank-first", "blank"])
def test_csv_without_a_header_is_not_added_to(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "headless.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as got:
        CsvWriter(str(path), append=True)
    assert str(got.value) == (f"{path} has no CSV header to add rows under: "
                              "overwrite it (-O) or write another file")
    assert path.read_bytes() == content


def _json_file(path: Path, items: list[dict[str, str]], *, batch: int = 256) -> bytes:
    w = JsonWriter(str(path), batch=batch)
    for it in items:
        w.write_item(it, "item", None)
    w.close()
    return path.read_bytes()


@pytest.mark.parametrize("n", [0, 1, 40, 44, 45, 46, 120])
@pytest.mark.parametrize("after", [b"", b"\n \n\t"])
def test_json_append_goes_on_with_the_array_byte_for_byte(
    tmp_path: Path, n: int, after: bytes,
) -> None:
    """-o on a JSON array (empty, small, around the 4 KiB window the writer
    reads its end through, large; with blanks after the ``]``) gives the
    bytes one writer would have written."""
    items = [{"k": f"{i:04d}" + "x" * 80} for i in range(n + 1)]
    want = _json_file(tmp_path / "one.json", items)
    path = tmp_path / "two.json"
    path.write_bytes(_json_file(path, items[:-1]) + after)
    w = JsonWriter(str(path), append=True)
    w.write_item(items[-1], "item", None)
    w.close()
    assert path.read_bytes() == want


def test_json_resume_cuts_back_to_the_mark(tmp_path: Path) -> None:
    items = [{"k": str(i)} for i in range(6)]
    path = tmp_path / "r.json"
    w = JsonWriter(str(path))
    for it in items[:3]:
        w.write_item(it, "item", None)
    w.flush()
    mark = w.tell()
    for it in items[3:5]:
        w.write_item(it, "item", None)
    w.close()
    w = JsonWriter(str(path), resume_at=mark)
    w.write_item(items[5], "item", None)
    w.close()
    assert path.read_bytes() == _json_file(tmp_path / "one.json", items[:3] + items[5:])


@pytest.mark.parametrize(("content", "why"), [
    (b'{"a": 1}\n', " (no closing ]): overwrite it (-O) or write another file"),
    (b"  ]\n", ": overwrite it (-O)"),
], ids=["object", "bracket-only"])
def test_json_that_is_no_array_is_not_added_to(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "not.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as got:
        JsonWriter(str(path), append=True)
    assert str(got.value) == f"{path} does not hold a JSON array{why}"
    assert path.read_bytes() == content


def test_json_batches_counts_and_pipes(tmp_path: Path) -> None:
    """A batch is flushed when it is full (the file is an array after each),
    the count is of values written, and a pipe gets the same array, its
    ``]`` at the end."""
    items = [{"k": str(i)} for i in range(5)]
    path = tmp_path / "b.json"
    w = JsonWriter(str(path), batch=2)
    for it in items[:2]:
        w.write_item(it, "item", None)
    assert path.read_bytes() == b'[\n{"k":"0"},\n{"k":"1"}\n]\n'  # flushed at 2, not 3
    for it in items[2:]:
        w.write_item(it, "item", None)
    w.close()
    assert w.count == 5
    assert path.read_bytes() == _json_file(tmp_path / "one.json", items)
    for values in (items, []):
        r, wfd = os.pipe()
        try:
            w = JsonWriter(f"/proc/self/fd/{wfd}", batch=2)
            for it in values:
                w.write_item(it, "item", None)
            w.close()
            os.close(wfd)
            wfd = -1
            with os.fdopen(r, "rb") as fh:
                r = -1
                got = fh.read()
        finally:
            for fd in (r, wfd):
                if fd >= 0:
                    os.close(fd)
        assert got == (_json_file(tmp_path / "one.json", values) if values else b"[]\n")


def test_csv_batches_resume_and_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    w = CsvWriter(str(path), batch=2)
    for i in range(2):
        w.write_item({"a": i}, "item", None)
    assert path.read_bytes() == b"a\r\n0\r\n1\r\n"  # flushed at 2 rows, not 3
    w.write_item({"a": 2}, "item", None)
    assert path.read_bytes() == b"a\r\n0\r\n1\r\n"  # a new batch: 1 of 2
    w.flush()
    mark = w.tell()
    w.write_item({"a": 3}, "item", None)
    w.close()
    w = CsvWriter(str(path), resume_at=mark)  # cut back to the mark
    w.write_item({"a": 4}, "item", None)
    w.close()
    assert path.read_bytes() == b"a\r\n0\r\n1\r\n2\r\n4\r\n"
    with pytest.raises(ConfigError) as got:
        CsvWriter(str(path), append=True, columns=("a", "b"))
    assert str(got.value) == (f"{path} has other columns (a) than this crawl writes: "
                              "overwrite it (-O) or write another file")
    path.write_bytes(b"a,c\r\n")
    with pytest.raises(ConfigError, match=r"has other columns \(a, c\) than"):
        CsvWriter(str(path), append=True, columns=("a", "b"))


def test_jsonl_counts_what_it_wrote(tmp_path: Path) -> None:
    w = JsonlWriter(str(tmp_path / "p.jsonl"))
    for i in range(3):
        w.write_record({"url": f"http://h.test/{i}"})
    w.close()
    assert w.count == 3 == len((tmp_path / "p.jsonl").read_bytes().splitlines())


def _warc(path: Path) -> list[tuple[str, str | None, Any, bytes, str | None]]:
    from warcio.archiveiterator import ArchiveIterator

    out = []
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh, check_digests="raise"):
            out.append((rec.rec_type, rec.rec_headers.get_header("WARC-Filename"),
                        rec.http_headers, rec.content_stream().read(),
                        rec.rec_headers.get_header("WARC-Target-URI")))
    return out


def test_warc_records_as_written(tmp_path: Path) -> None:
    """The warcinfo names the file and the format; a response keeps its
    status line (no phrase for an unknown status), every header but the
    length, which is the stored body's; a request line has the path and query."""
    from loopcrawl import __version__
    from loopcrawl.http import Request
    from loopcrawl.net.fetcher import Fetched

    def fetched(url: str, status: int) -> Fetched:
        return Fetched(url, status, "text/html", None, b"hello",
                       headers={"Content-Length": "99", "X-After": "1"},
                       request_headers={"User-Agent": "t"})

    for name, zipped in (("a.warc", None), ("b.warc.gz", None), ("c.warc.gz", False)):
        path = tmp_path / name
        w = WarcWriter(str(path), gzip=zipped)
        w.write_response(Request("http://h.test/p?q=1"), fetched("http://h.test/p?q=1", 404))
        w.write_response(Request("http://h.test/"), fetched("http://h.test/", 599))
        w.close()
        assert (path.read_bytes()[:2] == b"\x1f\x8b") == (name == "b.warc.gz")
        recs = _warc(path)
        assert [r[0] for r in recs] == ["warcinfo", "response", "request", "response", "request"]
        assert recs[0][1] == name
        assert recs[0][3].decode().splitlines() == [
            f"software: loopcrawl/{__version__}", "format: WARC File Format 1.1",
            "conformsTo: https://iipc.github.io/warc-specifications/specifications/"
            "warc-format/warc-1.1/"]
        resp, req = recs[1][2], recs[2][2]
        assert (resp.protocol, resp.statusline) == ("HTTP/1.1", "404 Not Found")
        assert resp.headers == [("X-After", "1"), ("Content-Length", "5")]
        assert (req.protocol, req.statusline) == ("GET", "/p?q=1 HTTP/1.1")
        assert recs[1][4] == recs[2][4] == "http://h.test/p?q=1"
        assert recs[3][2].statusline == "599" and recs[4][2].statusline == "/ HTTP/1.1"


def test_warc_resume_cuts_back_to_the_mark(tmp_path: Path) -> None:
    from loopcrawl.http import Request
    from loopcrawl.net.fetcher import Fetched

    path = tmp_path / "r.warc"
    w = WarcWriter(str(path))
    for i in range(2):
        url = f"http://h.test/{i}"
        w.write_response(Request(url), Fetched(url, 200, "text/html", None, b"x"))
        if i == 0:
            w.flush()
            mark = w.tell()
    w.close()
    w = WarcWriter(str(path), resume_at=mark)
    w.write_response(Request("http://h.test/2"), Fetched("http://h.test/2", 200, "text/html",
                                                         None, b"y"))
    w.close()
    assert [r[3] for r in _warc(path) if r[0] == "response"] == [b"x", b"y"]


def test_output_refusals_word_for_word(tmp_path: Path) -> None:
    """``-o`` is checked before any request, each refusal one clear line."""
    from loopcrawl.outputs import parse_outputs
    from loopcrawl.outputs.registry import OutputSpec

    def refused(*paths: str | OutputSpec, fmt: str | None = None, resumable: bool = False) -> str:
        with pytest.raises(ConfigError) as got:
            parse_outputs(list(paths), fmt, resumable=resumable)
        return str(got.value)

    a = str(tmp_path / "a.jsonl")
    assert refused("x.jsonl", fmt="xml") == (
        "unknown format 'xml': choose one of jsonl, json, csv, sqlite, warc, parquet")
    assert refused(OutputSpec(a, "xml")).startswith("unknown format 'xml': choose one of jsonl, ")
    again = f"{tmp_path}/./a.jsonl"
    assert refused(a, again) == f"{again} is given twice as an output"
    assert [s.path for s in parse_outputs(["-", a])] == ["-", a]
    assert refused(str(tmp_path)) == f"cannot write {tmp_path}: it is a directory"
    assert refused("/dev/null", fmt="sqlite") == (
        "cannot write /dev/null: an SQLite database needs a regular file (not a pipe or a device)")
    assert [s.format for s in parse_outputs([str(tmp_path / "p.db")])] == ["sqlite"]
    assert refused(str(tmp_path / "p.parquet"), resumable=True) == (
        f"{tmp_path}/p.parquet: a parquet file cannot be cut back to a checkpoint, so a crawl "
        "with --state cannot write it; formats that can: jsonl, json, csv, sqlite, warc")
    assert parse_outputs([a], resumable=True)[0].path == a
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root writes anywhere
            assert refused(str(ro / "x.csv")) == f"cannot write {ro}/x.csv: permission denied"
    finally:
        ro.chmod(0o700)
