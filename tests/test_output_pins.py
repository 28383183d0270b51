"""Output promises that make mutate found unpinned (docs/testing.md): the
exact bytes and warnings of the CSV writer, and how it adds to a file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from loopcrawl import ConfigError
from loopcrawl.errors import StateError
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


# -- the registry: open_output(s)' modes, roles and resume marks, check_path, Outputs.close --


def test_refusals_of_names_places_and_stdout_word_for_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each refusal of ``-o`` names the file and what to do, checked before
    any file is opened; standard output (``-``) is not a file named ``-``."""
    from loopcrawl.outputs import check_path, parse_outputs

    def refused(*paths: str, fmt: str | None = None, resumable: bool = False) -> str:
        with pytest.raises(ConfigError) as got:
            parse_outputs(list(paths), fmt, resumable=resumable)
        return str(got.value)

    assert refused(str(tmp_path / "pages.xml")) == (
        f"cannot tell the format of {tmp_path}/pages.xml from its name: end it in .jsonl, "
        ".jsonl.gz, .ndjson, .jl, .json, .csv, .db, .sqlite, .sqlite3, .warc, .warc.gz, "
        ".parquet, or give --format (jsonl, json, csv, sqlite, warc, parquet)")
    assert refused("-", resumable=True) == (
        "--state needs -o FILE: standard output cannot be rewound when a crawl resumes")
    # A directory whose name has a format's ending is refused by check_path.
    (tmp_path / "d.jsonl").mkdir()
    assert refused(str(tmp_path / "d.jsonl")) == f"cannot write {tmp_path}/d.jsonl: it is a directory"
    # The walk up: the first part that exists must be a directory, and the parent itself.
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError) as got:
        check_path(str(tmp_path / "f" / "sub" / "x.csv"))
    assert str(got.value) == f"cannot write {tmp_path}/f/sub/x.csv: {tmp_path}/f is a file, not a directory"
    assert refused(str(tmp_path / "f" / "x")) == (  # no ending under a file: not a stream
        f"cannot write {tmp_path}/f/x: {tmp_path}/f is a file, not a directory")
    with pytest.raises(ConfigError) as got:
        check_path(str(tmp_path / "no" / "x.csv"))
    assert str(got.value) == f"cannot write {tmp_path}/no/x.csv: directory {tmp_path}/no does not exist"
    check_path(str(tmp_path / "x.csv"))  # a new file in a directory that exists
    # A directory nobody may write in (as root too: /proc/1 refuses writes to everyone).
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    closed = next(d for d in (ro, Path("/proc/1")) if not os.access(d, os.W_OK))
    assert refused(str(closed / "x.csv")) == f"cannot write {closed}/x.csv: permission denied"
    ro.chmod(0o700)
    # Defaults: no --state, so any format goes; "-" is standard output, not ./-
    assert [s.format for s in parse_outputs([str(tmp_path / "p.parquet"), "-"])] == [
        "parquet", "jsonl"]
    monkeypatch.chdir(tmp_path)
    assert [s.path for s in parse_outputs(["-", "./-"], "jsonl")] == ["-", "./-"]
    assert refused("-", "-") == "- is given twice as an output"
    assert [s.format for s in parse_outputs(["/dev/null"])] == ["jsonl"]  # a device, not SQLite


def test_parquet_without_pyarrow_is_one_line_for_parquet_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyarrow is an optional extra: a Parquet output without it is refused
    before the crawl with the pip line; the other formats do not need it."""
    from loopcrawl.outputs import parse_outputs

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an import without it raises
    with pytest.raises(ConfigError) as got:
        parse_outputs([str(tmp_path / "p.parquet")])
    assert str(got.value) == "Parquet output needs pyarrow: pip install 'loopcrawl[parquet]'"
    assert [s.format for s in parse_outputs([str(tmp_path / "p.csv")])] == ["csv"]


def _jsonl_lines(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def test_open_output_modes_roles_and_resume_marks(tmp_path: Path) -> None:
    """``open_output``: a name is enough (format by ending); an existing file
    is added to unless ``mode="overwrite"``; a CSV for page records must
    have their columns, one for items takes the header it has; a resume mark
    cuts each resumable format back."""
    from loopcrawl.outputs import open_output

    a = tmp_path / "a.jsonl"
    a.write_bytes(b'{"old":1}\n')
    with open_output(str(a)) as o:  # append by default
        o.write_record({"url": "u"})
    assert _jsonl_lines(a) == [{"old": 1}, {"url": "u"}]
    with open_output(str(a), mode="overwrite") as o:
        o.write_record({"url": "v"})
    assert _jsonl_lines(a) == [{"url": "v"}]

    theirs = tmp_path / "theirs.csv"
    theirs.write_bytes(b"a,b\r\n")
    with pytest.raises(ConfigError) as got:
        open_output(str(theirs))  # page records by default: PAGE_FIELDS or nothing
    assert str(got.value) == (f"{theirs} has other columns (a, b) than this crawl writes: "
                              "overwrite it (-O) or write another file")
    with open_output(str(theirs), role="items") as o:
        o.write_item({"b": 2, "a": 1}, "item", None)
    assert theirs.read_bytes() == b"a,b\r\n1,2\r\n"

    # Each resumable format cut back to its mark: what came after it is gone.
    for name in ("r.jsonl", "r.json", "r.csv", "r.db", "r.warc"):
        path = tmp_path / name
        o = open_output(str(path), mode="overwrite")
        _one(o, 0)
        o.flush()
        mark = o.tell()
        _one(o, 1)
        o.close()
        o = open_output(str(path), resume_at=mark)
        _one(o, 2)
        o.close()
        assert _written(path) == [0, 2], name

    # Parquet: never resumed, never added to (refused before the file is touched).
    pq_path = tmp_path / "p.parquet"
    with pytest.raises(ConfigError) as got:
        open_output(str(pq_path), resume_at=0)
    assert str(got.value) == f"{pq_path}: a parquet file cannot be resumed"
    pq_path.write_bytes(b"PAR1")
    with pytest.raises(ConfigError) as got:
        open_output(str(pq_path))
    assert str(got.value) == (f"{pq_path} exists, and a Parquet file cannot be appended to: "
                              "overwrite it (-O) or write another file")
    assert pq_path.read_bytes() == b"PAR1"


def _one(o: Any, i: int) -> None:
    """Write page ``i`` to ``o`` in the role it takes."""
    from loopcrawl.http import Request
    from loopcrawl.net.fetcher import Fetched

    url = f"http://h.test/{i}"
    if o.takes("records"):
        o.write_record({"url": url, "status": 200})
    else:
        o.write_response(Request(url), Fetched(url, 200, "text/html", None, b"x"))


def _written(path: Path) -> list[int]:
    """The page numbers in ``path``, read back with the format's own reader."""
    import csv
    import sqlite3

    name = path.name
    if name.endswith(".jsonl"):
        urls = [r["url"] for r in _jsonl_lines(path)]
    elif name.endswith(".json"):
        urls = [r["url"] for r in json.loads(path.read_bytes())]
    elif name.endswith(".csv"):
        with path.open(newline="") as fh:
            urls = [r["url"] for r in csv.DictReader(fh)]
    elif name.endswith(".db"):
        con = sqlite3.connect(path)
        urls = [r[0] for r in con.execute("SELECT url FROM pages ORDER BY rowid")]
        con.close()
    else:
        urls = [r[4] for r in _warc(path) if r[0] == "response"]
    return [int(u.rsplit("/", 1)[1]) for u in urls]


def test_open_outputs_modes_roles_and_marks(tmp_path: Path) -> None:
    """``open_outputs``: each spec's own mode over the call's; the role for
    every output; one resume mark per output, each applied to its own."""
    from loopcrawl.outputs import OutputSpec, open_outputs

    keep, replace = tmp_path / "keep.jsonl", tmp_path / "replace.jsonl"
    for p in (keep, replace):
        p.write_bytes(b'{"old":1}\n')
    with open_outputs([str(keep), OutputSpec(str(replace), "jsonl", "overwrite")],
                      mode="append") as outs:
        for o in outs:
            o.write_record({"url": "u"})
    assert _jsonl_lines(keep) == [{"old": 1}, {"url": "u"}]
    assert _jsonl_lines(replace) == [{"url": "u"}]
    with open_outputs([OutputSpec(str(keep), "jsonl", "append")], mode="overwrite") as outs:
        outs[0].write_record({"url": "v"})
    assert _jsonl_lines(keep) == [{"old": 1}, {"url": "u"}, {"url": "v"}]

    theirs = tmp_path / "theirs.csv"
    theirs.write_bytes(b"a,b\r\n")
    with pytest.raises(ConfigError, match="has other columns"):
        open_outputs([str(theirs)])  # page records by default
    with open_outputs([str(theirs)], role="items") as outs:
        outs[0].write_item({"a": 1, "b": 2}, "item", None)
    assert theirs.read_bytes() == b"a,b\r\n1,2\r\n"

    paths = [tmp_path / "m.jsonl", tmp_path / "m.csv", tmp_path / "m.warc"]
    with open_outputs([str(p) for p in paths], mode="overwrite") as outs:
        for o in outs:
            _one(o, 0)
        outs.flush()
        marks = outs.tell()
        for o in outs:
            _one(o, 1)
    with pytest.raises(ValueError, match=r"^one resume mark per output$"):
        open_outputs([str(p) for p in paths], resume_marks=marks[:2])
    with open_outputs([str(p) for p in paths], resume_marks=marks) as outs:
        assert [type(o).__name__ for o in outs.taking("responses")] == ["WarcWriter"]
        assert outs.paths == [str(p) for p in paths]
        for o in outs:
            _one(o, 2)
    assert [_written(p) for p in paths] == [[0, 2]] * 3


def test_outputs_close_every_one_and_report_the_first_failure(tmp_path: Path) -> None:
    """``Outputs.close`` goes on past a failing output (a full disk, a closed
    pipe) so every other one is flushed, then raises the first failure; a
    second close has nothing left to do."""
    from loopcrawl.errors import OutputError
    from loopcrawl.outputs import Outputs

    r, w = os.pipe()
    try:
        before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
        outs = Outputs([JsonlWriter(str(before)), JsonlWriter("/dev/full"),
                        JsonlWriter(f"/proc/self/fd/{w}"), JsonlWriter(str(after))])
        os.close(r)  # the pipe's reader goes away: writing to it fails
        r = -1
        for o in outs:
            o.write_record({"url": "u"})
        with pytest.raises(OutputError) as got:
            outs.close()
        assert str(got.value) == "cannot write /dev/full: No space left on device"
        assert _jsonl_lines(before) == _jsonl_lines(after) == [{"url": "u"}]
        assert len(outs) == 0
        outs.close()
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)


# -- Parquet: typed columns, row groups, what does not fit, standard output --


def _parquet(path: Path) -> tuple[dict[str, str], list[dict[str, Any]], list[int]]:
    """(column types, rows, rows per row group) as pyarrow reads them."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    table = f.read()
    return ({fl.name: str(fl.type) for fl in table.schema}, table.to_pylist(),
            [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)])


def _left_out(caplog: pytest.LogCaptureFixture, path: Path, columns: str) -> list[str]:
    """What the Parquet writer's warnings say it left out (each names the file
    and its columns first)."""
    head = f"{path}: a Parquet file has one set of columns ({columns}); leaving out "
    said = [r.getMessage() for r in caplog.records]
    assert all(m.startswith(head) for m in said), said
    return [m.removeprefix(head) for m in said]


def test_parquet_items_typed_by_their_first_row_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Each column takes the narrowest type of its first row group's values
    (bool, int64, float64, else string; nested values as JSON text; a column
    of nulls is string); later values are turned to the column's type where
    they can be (to text for a string column) and left out with one warning
    a column where they cannot (1.5 is no int64: not cut to 1)."""
    from loopcrawl.outputs import ParquetWriter

    caplog.set_level(logging.WARNING, "loopcrawl.outputs")
    path = tmp_path / "items.parquet"
    w = ParquetWriter(str(path), batch=2)
    assert w.count == w.ignored == 0
    first = [{"b": True, "i": 1, "f": 1, "s": "a", "n": [1, {"k": None}], "z": None, "g": 1.0},
             {"b": False, "i": None, "f": 2.5, "s": "b", "n": {"x": 1}, "z": None, "g": 2.0}]
    later = [{"b": None, "i": 2.0, "f": "y", "s": 5, "n": 1e20, "z": 2**70, "g": 3},
             {"b": 1, "i": 1.5, "f": "x", "s": [1, 2], "n": "t", "z": "y", "g": "x"},
             {"b": True, "i": True, "f": 4.5, "s": 2.5, "n": None, "z": None, "g": None}]
    for item in first + later:
        w.write_item(item, "Row", None)
    w.close()
    types, rows, groups = _parquet(path)
    assert types == {"b": "bool", "i": "int64", "f": "double", "s": "string", "n": "string",
                     "z": "string", "g": "double"}
    assert groups == [2, 2, 1]  # a row group at each batch of 2, the rest at close
    assert rows == [
        {"b": True, "i": 1, "f": 1.0, "s": "a", "n": '[1,{"k":null}]', "z": None, "g": 1.0},
        {"b": False, "i": None, "f": 2.5, "s": "b", "n": '{"x":1}', "z": None, "g": 2.0},
        {"b": None, "i": 2, "f": None, "s": "5", "n": "1e+20", "z": "1180591620717411303424",
         "g": 3.0},
        {"b": None, "i": None, "f": None, "s": "[1,2]", "n": "t", "z": "y", "g": None},
        {"b": True, "i": None, "f": 4.5, "s": "2.5", "n": None, "z": None, "g": None},
    ]
    assert _left_out(caplog, path, "b, i, f, s, n, z, g") == [
        "values of b that are not bool", "values of i that are not int64",
        "values of f that are not double", "values of g that are not double"]
    assert (w.count, w.ignored) == (5, 6)  # each value left out (not the nulls)


def test_parquet_items_columns_and_what_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Declared fields are the columns (in their order) even when the first
    item lacks some; a key that is not a column and items of another type
    are left out with one warning each, and counted."""
    from loopcrawl.outputs import ParquetWriter

    caplog.set_level(logging.WARNING, "loopcrawl.outputs")
    path = tmp_path / "books.parquet"
    w = ParquetWriter(str(path))
    fields = ("title", "price")
    w.write_item({"price": 3}, "Book", fields)
    w.write_item({"title": "b", "extra": 1}, "Book", fields)
    w.write_item({"title": "c", "extra": 2, "more": 3}, "Book", fields)
    w.write_item({"x": 1}, "Author", None)
    w.write_item({"x": 2}, "Author", None)
    w.write_item({"x": 3}, "Tag", None)
    w.close()
    types, rows, _ = _parquet(path)
    assert types == {"title": "string", "price": "int64"}
    assert rows == [{"title": None, "price": 3}, {"title": "b", "price": None},
                    {"title": "c", "price": None}]
    assert _left_out(caplog, path, "title, price") == [
        "the key 'extra' of Book items (not a column)", "the key 'more' of Book items (not a column)",
        "Author items (the file holds Book items)", "Tag items (the file holds Book items)"]
    assert (w.count, w.ignored) == (3, 6)
    # A dict's keys are the columns when no fields are declared.
    w = ParquetWriter(str(path))
    w.write_item({"b": 1, "a": "x"}, "item", None)
    w.close()
    assert _parquet(path)[:2] == ({"b": "int64", "a": "string"}, [{"b": 1, "a": "x"}])


def test_parquet_page_records_row_groups_and_empty_files(tmp_path: Path) -> None:
    """Page records: typed columns (fetched_at to the millisecond), missing
    fields null, a row group every 10,000 rows by default; a file with no
    rows still has the page columns."""
    from loopcrawl.outputs import PAGE_FIELDS, ParquetWriter

    path = tmp_path / "pages.parquet"
    w = ParquetWriter(str(path))
    w.write_record({"url": "http://h.test/", "status": 200, "fetched_at": 1700000000.0004,
                    "elapsed_ms": 1.5})
    w.write_record({"url": "http://h.test/x"})
    w.close()
    types, rows, groups = _parquet(path)
    assert list(types) == list(PAGE_FIELDS) and types["fetched_at"] == "timestamp[ms, tz=UTC]"
    assert rows[0]["fetched_at"].timestamp() == 1700000000.0
    assert (rows[0]["status"], rows[0]["elapsed_ms"], rows[0]["redirects"]) == (200, 1.5, 0)
    assert rows[1] == {**dict.fromkeys(PAGE_FIELDS), "url": "http://h.test/x", "redirects": 0}
    assert (w.count, w.ignored, groups) == (2, 0, [2])

    w = ParquetWriter(str(path))
    for i in range(10_001):
        w.write_record({"url": "u", "status": i})
    w.close()
    assert w.count == 10_001 and _parquet(path)[2] == [10_000, 1]

    w = ParquetWriter(str(path))
    w.close()
    assert _parquet(path) == (types, [], [])


def test_parquet_to_standard_output_and_write_errors(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``-`` is standard output (a file named ``-`` is not touched); a place
    that cannot be written is one clear error, when opened or when closed
    (a full disk: the file's buffer is written at close)."""
    import io

    import pyarrow.parquet as pq

    from loopcrawl.errors import OutputError
    from loopcrawl.outputs import OutputSpec, ParquetWriter, open_output

    monkeypatch.chdir(tmp_path)
    Path("-").write_bytes(b"a file named -")
    w = open_output(OutputSpec("-", "parquet"))  # standard output: nothing to append to
    w.write_item({"a": 1}, "item", None)
    w.close()
    assert Path("-").read_bytes() == b"a file named -"
    assert pq.read_table(io.BytesIO(capsysbinary.readouterr().out)).to_pylist() == [{"a": 1}]
    with pytest.raises(ConfigError) as got:
        ParquetWriter(str(tmp_path))
    assert str(got.value) == f"cannot write {tmp_path}: Is a directory"
    w = ParquetWriter("/dev/full")
    w.write_item({"a": 1}, "item", None)
    with pytest.raises(OutputError) as out:
        w.close()
    assert str(out.value) == "cannot write /dev/full: [Errno 28] No space left on device"
    w = ParquetWriter("/dev/full", batch=1)
    with pytest.raises(OutputError) as out:  # a row group bigger than the file's buffer
        w.write_item({"a": "x" * 100_000}, "item", None)
    assert str(out.value) == "cannot write /dev/full: [Errno 28] No space left on device"
    with contextlib.suppress(OutputError):
        w.close()


# -- base: what an output refuses, ByteFile's writes; SQLite; a shared crawl's outputs --


def test_an_output_names_what_it_does_not_take(tmp_path: Path) -> None:
    from loopcrawl.http import Request
    from loopcrawl.net.fetcher import Fetched
    from loopcrawl.outputs import ParquetWriter

    warc = WarcWriter(str(tmp_path / "a.warc"))
    jsonl = JsonlWriter(str(tmp_path / "a.jsonl"))
    parquet = ParquetWriter(str(tmp_path / "a.parquet"))
    for call, message in [
        (lambda: warc.write_record({"url": "u"}), "warc output takes no page records"),
        (lambda: warc.write_item({}, "item", None), "warc output takes no items"),
        (lambda: jsonl.write_response(Request("http://h.test/"),
                                      Fetched("http://h.test/", 200, "text/html", None, b"")),
         "jsonl output takes no responses"),
        (parquet.tell, "parquet output cannot be resumed"),
    ]:
        with pytest.raises(TypeError) as got:
            call()
        assert str(got.value) == message
    assert repr(jsonl) == f"<JsonlWriter {str(tmp_path / 'a.jsonl')!r}>"
    for o in (warc, jsonl, parquet):
        o.close()
    with pytest.raises(ConfigError) as bad:
        JsonlWriter(str(tmp_path))
    assert str(bad.value) == f"cannot write {tmp_path}: Is a directory"


def test_byte_file_writes_empties_and_fails_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ByteFile empties a file unless told to append; counts what it
    wrote from 0 on a pipe or device too; hands standard output each write at
    once; after a failed write every later one raises the same error."""
    import io

    from loopcrawl.errors import OutputError
    from loopcrawl.outputs import ByteFile

    path = tmp_path / "f"
    path.write_bytes(b"old")
    f = ByteFile(str(path))
    assert f.offset == 0 and path.read_bytes() == b""
    f.close()
    f = ByteFile("/dev/null")
    assert f.offset == 0
    f.write(b"abc")
    assert f.offset == 3
    f.close()
    f = ByteFile(str(path))
    with pytest.raises(OutputError) as got:
        f.truncate(-1)
    f.close()
    assert str(got.value) == f"cannot truncate {path}: Invalid argument"
    fds = len(os.listdir("/proc/self/fd"))
    ByteFile(str(path)).close()
    assert len(os.listdir("/proc/self/fd")) == fds  # its file is closed, not left to the collector
    with pytest.raises(ConfigError) as bad:
        ByteFile("/dev/null", resume_at=10)
    assert str(bad.value) == ("/dev/null is not a regular file: a crawl with --state cannot be "
                              "resumed into it")
    path.write_bytes(b"x" * 1000)
    with pytest.raises(StateError) as short:
        ByteFile(str(path), resume_at=2000)
    assert str(short.value) == (
        f"{path} holds 1,000 bytes, but the crawl state recorded 2,000 at its last checkpoint: "
        "the output was changed since; restore it, or start over with a new state file")
    assert path.stat().st_size == 1000
    # A regular file whose file system cannot sync it (procfs): the error, then every write.
    f = ByteFile("/proc/self/oom_score_adj", append=True)
    with pytest.raises(OutputError) as got:
        f.fsync()
    assert str(got.value) == "cannot write /proc/self/oom_score_adj: Invalid argument"
    with pytest.raises(OutputError) as again:
        f.write(b"x")
    assert again.value is got.value
    f.close()

    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(
            io.FileIO(w, "wb", closefd=False))))
        f = ByteFile("-")
        f.write(b"now")
        assert os.read(r, 100) == b"now"  # not left in the stream's buffer
        f.fsync()  # a pipe: nothing to sync, no error
    finally:
        os.close(r)
        os.close(w)

    full = ByteFile("/dev/full")
    with pytest.raises(OutputError) as got:
        full.write(b"x")
    assert str(got.value) == "cannot write /dev/full: No space left on device"
    with pytest.raises(OutputError) as again:
        full.write(b"y")
    assert again.value is got.value
    full.close()


def test_byte_file_finishes_a_write_a_signal_cut_short(tmp_path: Path) -> None:
    """A write to a pipe that a signal interrupts returns what it wrote so
    far: the rest is written, nothing is lost (a Ctrl-C while ``-o`` feeds a
    pipe)."""
    import signal
    import threading

    from loopcrawl.outputs import ByteFile

    data = bytes(range(256)) * 4096  # 1 MiB: the pipe takes 64 KiB, then the write waits
    r, w = os.pipe()
    got = bytearray()
    main = threading.get_ident()

    def reader() -> None:
        time.sleep(0.2)  # the writer is blocked on a full pipe by now
        signal.pthread_kill(main, signal.SIGUSR1)  # cuts the blocked write short
        time.sleep(0.1)
        while chunk := os.read(r, 1 << 16):
            got.extend(chunk)

    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    t = threading.Thread(target=reader)
    try:
        f = ByteFile(f"/proc/self/fd/{w}")
        t.start()
        f.write(data)
        f.close()
        os.close(w)
        w = -1
        t.join(10)
    finally:
        signal.signal(signal.SIGUSR1, old)
        if w >= 0:
            os.close(w)
        t.join(10)
        os.close(r)
    assert f.offset == len(data) and bytes(got) == data


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_sqlite_commits_in_batches_of_500_and_refuses_streams(tmp_path: Path) -> None:
    from loopcrawl.errors import OutputError
    from loopcrawl.outputs import SqliteWriter

    path = tmp_path / "p.db"
    w = SqliteWriter(str(path), append=False)
    for i in range(499):
        w.write_record({"url": f"u{i}"})
    assert _rows(path, "SELECT count(*) FROM pages") == [(0,)]  # not committed yet
    w.write_record({"url": "u499"})
    assert _rows(path, "SELECT count(*) FROM pages") == [(500,)]
    for i in range(499):
        w.write_record({"url": f"v{i}"})
    assert _rows(path, "SELECT count(*) FROM pages") == [(500,)]  # the next batch: 499 of 500
    w.write_record({"url": "v499"})
    assert _rows(path, "SELECT count(*) FROM pages") == [(1000,)]
    w.close()
    with pytest.raises(OutputError) as closed:
        w.flush()
    assert str(closed.value) == f"cannot write {path}: Cannot operate on a closed database."
    path.write_bytes(b"not a database, " * 100)
    with pytest.raises(ConfigError) as got:
        SqliteWriter(str(path))
    assert str(got.value) == f"cannot write {path}: file is not a database"
    for bad in ("-", "/dev/null"):
        with pytest.raises(ConfigError) as got:
            SqliteWriter(bad)
        assert str(got.value) == (f"cannot write {bad}: an SQLite database needs a regular "
                                  "file (not standard output, a pipe or a device)")


def test_sqlite_overwrite_starts_clean(tmp_path: Path) -> None:
    """Overwriting removes the database and what an earlier crawl left next
    to it (its WAL, shared memory and journal), so none of it comes back; a
    leftover that cannot be removed is one clear error."""
    from loopcrawl.outputs import SqliteWriter

    path = tmp_path / "p.db"
    old = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        (tmp_path / f"p.db{suffix}").write_bytes(b"left over")
        old[suffix] = os.open(tmp_path / f"p.db{suffix}", os.O_RDONLY)  # keeps its inode taken
    try:
        w = SqliteWriter(str(path), append=False)
        for suffix, fd in old.items():
            p = tmp_path / f"p.db{suffix}"
            assert not p.exists() or not os.path.samestat(os.fstat(fd), p.stat()), suffix
        w.write_record({"url": "u"})
        w.close()
    finally:
        for fd in old.values():
            os.close(fd)
    assert _rows(path, "SELECT url FROM pages") == [("u",)]
    (tmp_path / "p.db-journal").unlink(missing_ok=True)
    (tmp_path / "p.db-journal").mkdir()
    (tmp_path / "p.db-journal" / "x").write_text("")
    with pytest.raises(ConfigError) as got:
        SqliteWriter(str(path), append=False)
    assert str(got.value) == f"cannot overwrite {path}-journal: Is a directory"


def test_sqlite_items_tables_columns_and_names(tmp_path: Path) -> None:
    """A table per type, a column per declared field (even one the first
    item lacks), a new key adds a column once whatever the keys' order,
    names with quotes kept as they are, an item with no fields a row."""
    from loopcrawl.outputs import SqliteWriter

    path = tmp_path / "i.db"
    w = SqliteWriter(str(path), append=False)
    w.write_item({"a": 1}, "Book", ("a", "b"))
    w.write_item({"a": 1}, "item", None)
    w.write_item({"a": 2, "b": [1]}, "item", None)
    w.write_item({"b": True, "a": 3}, "item", None)
    w.write_item({'say "hi"': "x"}, 'My "Item"', None)
    w.write_item({}, "Empty", None)
    w.close()
    assert _rows(path, "SELECT a, b FROM Book") == [(1, None)]
    assert _rows(path, "SELECT a, b FROM item") == [(1, None), (2, "[1]"), (3, 1)]
    assert _rows(path, 'SELECT "say ""hi""" FROM "My ""Item"""') == [("x",)]
    assert _rows(path, "SELECT _ FROM Empty") == [(None,)]
    assert w.count == 6


def test_sqlite_resume_write_errors_and_tables_without_rowid(tmp_path: Path) -> None:
    """Resuming deletes what came after the mark, all of a table made after
    it; a table without rowids (someone else's) is left alone; a write that
    SQLite refuses is one clear error naming the file."""
    import sqlite3

    from loopcrawl.errors import OutputError
    from loopcrawl.outputs import SqliteWriter

    path = tmp_path / "r.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID")
    con.execute("INSERT INTO kv VALUES ('a', 1)")
    con.execute("CREATE TABLE pages (url TEXT)")
    con.commit()
    con.close()
    w = SqliteWriter(str(path))
    w.write_item({"n": 1}, "item", None)
    w.write_item({"n": 2}, "item", None)
    w.flush()
    mark = w.tell()
    assert mark == {"pages": 0, "item": 2}
    w.write_item({"n": 3}, "item", None)
    w.write_item({"t": 1}, "Late", None)
    w.write_item({"t": 2}, "Late", None)
    with pytest.raises(OutputError) as got:  # its pages table lacks our columns
        w.write_record({"url": "u"})
    assert str(got.value) == f"cannot write {path}: table pages has no column named final_url"
    w.close()
    w = SqliteWriter(str(path), resume_at=mark)
    w.close()
    assert _rows(path, "SELECT n FROM item") == [(1,), (2,)]
    assert _rows(path, "SELECT count(*) FROM Late") == [(0,)]
    assert _rows(path, "SELECT * FROM kv") == [("a", 1)]
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE strict_item (n NOT NULL)")
    con.commit()
    con.close()
    w = SqliteWriter(str(path))
    with pytest.raises(OutputError) as got:
        w.write_item({"m": 1}, "strict_item", ("n",))
    assert str(got.value) == f"cannot write {path}: NOT NULL constraint failed: strict_item.n"
    w.close()
    with pytest.raises(OutputError) as got:
        w.tell()
    assert str(got.value) == f"cannot read {path}: Cannot operate on a closed database."


def test_a_shared_crawls_output_marks_pages_and_flushes_each_write(tmp_path: Path) -> None:
    """A worker's output: each page record carries its request's fingerprint
    (16 hex digits), kept if it has one; each write reaches the file at once
    unless the frontier flushes before its acks; SQLite commits without an
    fsync (synchronous NORMAL)."""
    from loopcrawl.errors import OutputError
    from loopcrawl.http import Request
    from loopcrawl.net.fetcher import Fetched
    from loopcrawl.outputs import SqliteWriter
    from loopcrawl.outputs.shared import SharedCrawlOutput
    from loopcrawl.urls import fingerprint

    path = tmp_path / "p.jsonl"
    out = SharedCrawlOutput(JsonlWriter(str(path)))
    assert out.takes("records") and not out.takes("responses") and out.path == str(path)
    out.write_record({"url": "http://h.test/"})
    assert _jsonl_lines(path) == [{"url": "http://h.test/",
                                   "fp": f"{fingerprint('http://h.test/'):016x}"}]
    out.write_record({"url": "http://h.test/x", "fp": "given"})
    out.write_item({"k": 1}, "item", None)
    assert [r.get("fp") for r in _jsonl_lines(path)] == [
        f"{fingerprint('http://h.test/'):016x}", "given", None]
    assert out.count == 3
    out.close()
    assert fingerprint("http://h.test/25") < 1 << 60  # a short one is padded to 16 digits
    out = SharedCrawlOutput(JsonlWriter(str(path)))
    out.write_record({"url": "http://h.test/25"})
    assert _jsonl_lines(path)[0]["fp"] == f"{fingerprint('http://h.test/25'):016x}"
    out.close()

    later = SharedCrawlOutput(JsonlWriter(str(path)), flush_each=False)
    later.write_record({"url": "http://h.test/"})
    assert path.read_bytes() == b""  # until the frontier flushes before its acks
    later.flush()
    assert len(_jsonl_lines(path)) == 1
    later.close()

    warc_path = tmp_path / "w.warc"
    warc = SharedCrawlOutput(WarcWriter(str(warc_path)))
    size = warc_path.stat().st_size
    warc.write_response(Request("http://h.test/"),
                        Fetched("http://h.test/", 200, "text/html", None, b"x"))
    assert warc_path.stat().st_size > size
    warc.fsync()
    warc.close()

    csv_path = tmp_path / "i.csv"
    with SharedCrawlOutput(CsvWriter(str(csv_path))) as items:
        items.write_item({"a": 1}, "Book", ("a", "b"))  # the declared fields are the columns
    assert csv_path.read_bytes() == b"a,b\r\n1,\r\n"

    db_path = tmp_path / "s.db"
    db = SqliteWriter(str(db_path), append=False)
    shared = SharedCrawlOutput(db)
    assert db._con.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    shared.write_item({"k": "x" * 10_000}, "item", None)
    assert _rows(db_path, "SELECT length(k) FROM item") == [(10_000,)]  # committed at once
    size = db_path.stat().st_size
    shared.fsync()  # the WAL is checkpointed into the database file: durable now
    assert db_path.stat().st_size > size
    shared.close()
    with pytest.raises(OutputError) as got:
        db.commit_without_fsync()
    assert str(got.value) == f"cannot write {db_path}: Cannot operate on a closed database."
    with pytest.raises(OutputError) as got:
        db.fsync()
    assert str(got.value) == f"cannot write {db_path}: Cannot operate on a closed database."


def test_an_output_failing_at_the_crawls_last_flush_is_the_crawls_error() -> None:
    """A full disk found only at the crawl's last flush (the record was
    buffered until then) is raised by ``run()``, word for word, not lost."""
    from loopcrawl import Crawler, Settings
    from loopcrawl.errors import OutputError

    from .conftest import PageServer

    full = JsonlWriter("/dev/full")
    with PageServer() as pages:
        pages.add("/")
        with pytest.raises(OutputError) as got:
            asyncio.run(Crawler(Settings(seeds=(pages.url + "/",), obey_robots=False),
                                outputs=[full]).run())
    assert str(got.value) == "cannot write /dev/full: No space left on device"
    assert full.count == 1
    with contextlib.suppress(OutputError):
        full.close()


def test_an_archive_gets_each_response_with_the_request_that_asked_for_it() -> None:
    """An output taking responses gets every response once, at its record,
    with the request that asked for it (a redirect's final response under
    the request for its first URL), and nothing for a request that got no
    response (robots.txt forbade it)."""
    from loopcrawl import Crawler, Settings
    from loopcrawl.http import Request
    from loopcrawl.net.fetched import Fetched
    from loopcrawl.outputs import Output

    from .conftest import PageServer

    class Archive(Output):
        format, roles, path = "archive", frozenset({"responses"}), "archive"

        def __init__(self) -> None:
            self.got: list[tuple[str, str, int]] = []

        def write_response(self, request: Request, fetched: Fetched) -> None:
            self.got.append((request.url, fetched.url, fetched.status))

    with PageServer() as pages:
        pages.add("/robots.txt", body="User-agent: *\nDisallow: /private\n",
                  content_type="text/plain")
        pages.add("/", links=["/r", "/gone", "/private"])
        pages.add("/r", status=302, headers={"Location": "/t"})
        pages.add("/t")
        archive = Archive()
        u = pages.url
        asyncio.run(Crawler(Settings(seeds=(u + "/",), retries=0), outputs=[archive]).run())
    assert sorted(archive.got) == [(u + "/", u + "/", 200), (u + "/gone", u + "/gone", 404),
                                   (u + "/r", u + "/t", 200)]


def test_a_crawl_in_process_writes_its_records_and_its_responses(tmp_path: Path) -> None:
    """A crawl run as a library (``CrawlRun``) hands each page record to the
    record outputs and each response to the archives: the JSONL and the WARC
    hold the same pages. The statistics name the outputs; their duration is
    the crawl's, not the time they are read."""
    from warcio.archiveiterator import ArchiveIterator

    from loopcrawl import CrawlRun, Settings

    from .conftest import PageServer

    with PageServer() as pages:
        pages.add("/", links=["/a"])
        pages.add("/a")
        jsonl, warc = tmp_path / "pages.jsonl", tmp_path / "pages.warc.gz"
        st = CrawlRun(Settings(seeds=(pages.url + "/",), obey_robots=False),
                      outputs=[jsonl, warc]).run().stats
    assert st.output == f"{jsonl}, {warc}"
    elapsed = st.elapsed
    time.sleep(0.002)
    assert st.elapsed == elapsed
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    with warc.open("rb") as fh:
        responses = [(r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                     for r in ArchiveIterator(fh) if r.rec_type == "response"]
    assert sorted(r["url"] for r in records) == sorted(u for u, _ in responses) == [
        pages.url + "/", pages.url + "/a"]
    assert all(b"<title>" in body for _, body in responses)
