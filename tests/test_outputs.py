"""Outputs of ``loopcrawl crawl`` and ``run`` on real files, read back with the
real tools (json, csv, sqlite3, gzip, pyarrow, warcio): one registry by
extension, one rule for an existing file, pipes and devices, ``--state``."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from loopcrawl import ConfigError, Settings, crawl
from loopcrawl.outputs import (
    FORMATS,
    PAGE_COLUMNS,
    PAGE_FIELDS,
    CsvWriter,
    OutputSpec,
    format_of,
    open_outputs,
    page_values,
    resumable_formats,
)
from loopcrawl.spider.items import item_record
from loopcrawl.testsite import ServerProcess, ServerThread, Site

from .conftest import PageServer

LOOPCRAWL = [sys.executable, "-m", "loopcrawl"]
EXTS = [".jsonl", ".jsonl.gz", ".json", ".csv", ".db", ".parquet", ".warc.gz"]
TABULAR = [".jsonl", ".jsonl.gz", ".json", ".csv", ".db", ".parquet"]


def cli(*args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOPCRAWL, *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def small_site(pages: PageServer) -> str:
    """Four pages and two failures: a 404 and a body over --max-response-size."""
    pages.add("/", links=["/a", "/b", "/missing", "/big"], title="Home, \"quoted\"")
    pages.add("/a", links=["/b"], title="Ünïcode\nA")
    pages.add("/b", links=["/"], title="B")
    pages.add("/big", body=b"<html>" + b"x" * 5000 + b"</html>")
    return pages.url + "/"


def settings(seed: str) -> Settings:
    return Settings(seeds=(seed,), max_response_size=2000, timeout=10)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The page records in ``path``, read with the format's own tool, as dicts
    of PAGE_FIELDS (typed as the format types them)."""
    name = path.name
    if name.endswith(".jsonl"):
        return [json.loads(x) for x in path.read_text().splitlines()]
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt") as fh:
            return [json.loads(x) for x in fh]
    if name.endswith(".json"):
        with path.open() as fh:
            data = json.load(fh)
        assert isinstance(data, list)
        return data
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            assert header == list(PAGE_FIELDS)
            return [dict(zip(header, row, strict=True)) for row in reader]
    if name.endswith(".db"):
        con = sqlite3.connect(path)
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM pages ORDER BY rowid")]
        con.close()
        return rows
    if name.endswith(".parquet"):
        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    raise AssertionError(name)


def warc_exchanges(path: Path) -> list[tuple[str, str, bytes]]:
    """(type, uri, payload) of every record, digests checked by warcio."""
    out = []
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh, check_digests="raise"):
            out.append((rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"),
                        rec.content_stream().read()))
    return out


def test_registry_by_extension_and_format() -> None:
    assert {format_of("x" + e) for e in EXTS} == {"jsonl", "json", "csv", "sqlite", "parquet",
                                                   "warc"}
    assert format_of("-") == "jsonl"
    assert format_of("/dev/stdout") == format_of("/dev/null") == "jsonl"  # streams
    assert format_of("pages.out", "csv") == "csv"
    assert set(FORMATS) == {"jsonl", "json", "csv", "sqlite", "warc", "parquet"}
    assert resumable_formats() == ["jsonl", "json", "csv", "sqlite", "warc"]
    assert [n for n, _ in PAGE_COLUMNS] == list(PAGE_FIELDS)
    assert page_values({"url": "u"})[PAGE_FIELDS.index("redirects")] == 0


def test_every_format_of_a_crawl_reads_back(pages: PageServer, tmp_path: Path) -> None:
    seed = small_site(pages)
    paths = [tmp_path / f"pages{e}" for e in EXTS]
    with open_outputs([str(p) for p in paths]) as outs:
        stats = crawl(settings(seed), outputs=outs)
    assert stats.ok + sum(stats.errors.values()) >= 4
    ref = read_rows(paths[0])
    assert len(ref) == 5 and {r.get("error") for r in ref} == {None, "too_large", "http_status"}
    assert sum(r["status"] == 404 for r in ref) == 1
    for path in paths[1:3]:  # .jsonl.gz and .json: the very same records
        assert read_rows(path) == ref, path
    want = [page_values(r) for r in ref]
    csv_rows = read_rows(tmp_path / "pages.csv")
    assert [[row[c] for c in PAGE_FIELDS] for row in csv_rows] == [
        ["" if v is None else str(v) for v in w] for w in want]
    db_rows = read_rows(tmp_path / "pages.db")
    assert [[row[c] for c in PAGE_FIELDS] for row in db_rows] == want
    con = sqlite3.connect(tmp_path / "pages.db")
    assert con.execute("SELECT typeof(status), typeof(fetched_at), typeof(bytes) FROM pages "
                       "WHERE status = 200 LIMIT 1").fetchone() == ("integer", "real", "integer")
    con.close()
    table = pq.read_table(tmp_path / "pages.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["status"] == "int64" and types["depth"] == "int64"
    assert types["fetched_at"] == "timestamp[ms, tz=UTC]"
    assert types["elapsed_ms"] == "double" and types["url"] == "string"
    pq_rows = table.to_pylist()
    for got, w in zip(pq_rows, want, strict=True):
        fetched = got.pop("fetched_at")
        assert abs(fetched.timestamp() - w[PAGE_FIELDS.index("fetched_at")]) < 0.002
        assert list(got.values()) == [v for c, v in zip(PAGE_FIELDS, w, strict=True)
                                      if c != "fetched_at"]
    # The WARC: every response with its request, payload digests checked.
    records = warc_exchanges(tmp_path / "pages.warc.gz")
    assert records[0][0] == "warcinfo"
    kinds = [t for t, _, _ in records[1:]]
    assert kinds == ["response", "request"] * (len(kinds) // 2)
    uris = {u for t, u, _ in records if t == "response"}
    assert {r["final_url"] for r in ref if r["status"] == 200} <= uris


@pytest.mark.parametrize("ext", EXTS)
def test_o_appends_and_capital_o_overwrites(pages: PageServer, tmp_path: Path,
                                            ext: str) -> None:
    """One rule for every format: -o adds to an existing file (as Scrapy's), -O
    replaces it; a format that cannot be added to says so before crawling."""
    seed = small_site(pages)
    path = tmp_path / f"out{ext}"

    def count() -> int:
        if ext.startswith(".warc"):
            return sum(t == "response" for t, _, _ in warc_exchanges(path))
        return len(read_rows(path))

    with open_outputs([str(path)]) as outs:
        crawl(settings(seed), outputs=outs)
    once = count()
    assert once >= 4
    if ext == ".parquet":
        with pytest.raises(ConfigError, match=r"cannot be appended.*-O"):
            open_outputs([str(path)])
        assert count() == once  # untouched
    else:
        with open_outputs([str(path)], mode="append") as outs:
            crawl(settings(seed), outputs=outs)
        assert count() == 2 * once
    with open_outputs([str(path)], mode="overwrite") as outs:
        crawl(settings(seed), outputs=outs)
    assert count() == once


def test_cli_repeatable_outputs_and_bad_ones_before_any_request(
        pages: PageServer, tmp_path: Path) -> None:
    seed = small_site(pages)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.csv"
    a.write_text("")
    b.write_text("stale\n")
    r = cli("crawl", seed, "-q", "-o", str(a), "-O", str(b), "--max-response-size", "2000")
    assert r.returncode == 0, r.stderr
    assert len(read_rows(a)) == len(read_rows(b)) == 5  # both written; -O replaced b
    hits = len(pages.log)
    for args, message in [
        (["-o", str(tmp_path / "x.xml")], "cannot tell the format of"),
        (["-o", "-", "--format", "sqlite"], "sqlite output needs a file"),
        (["-o", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "x.jsonl")], "given twice"),
        (["-o", str(a / "x.jsonl")], "is a file, not a directory"),
        (["-o", str(tmp_path / "p.parquet"), "--state", str(tmp_path / "s.db")],
         "formats that can: jsonl, json, csv, sqlite, warc"),
        (["-o", "/dev/null", "--format", "sqlite"], "needs a regular file"),
    ]:
        r = cli("crawl", seed, "-q", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("loopcrawl: error: ") and message in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert len(pages.log) == hits  # no request was sent


def test_pipes_and_devices(testsite: ServerThread, tmp_path: Path) -> None:
    """-o /dev/stdout into a real pipe, -o /dev/null, -o >(gzip > x.gz): every
    record, exit 0, no fsync or truncate error at the end."""
    seed = testsite.base_url + "/"
    exe = " ".join(LOOPCRAWL)
    wc = subprocess.run(f"{exe} crawl {seed} -q -o /dev/stdout | wc -l", shell=True,
                        capture_output=True, text=True, timeout=60)
    assert wc.returncode == 0 and wc.stderr == ""
    lines = int(wc.stdout)
    assert lines > 300
    r = cli("crawl", seed, "-q", "-o", "/dev/null", "-o", str(tmp_path / "also.csv"))
    assert r.returncode == 0, r.stderr
    assert len(read_rows(tmp_path / "also.csv")) == lines
    piped = subprocess.run([*LOOPCRAWL, "crawl", seed, "-q", "-o", "-", "--format", "parquet"],
                           capture_output=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    import pyarrow as pa

    assert pq.read_table(pa.BufferReader(piped.stdout)).num_rows == lines
    gz = tmp_path / "x.gz"
    r = subprocess.run(["bash", "-c", f"{exe} crawl {seed} -q -o >(gzip > {gz}); rc=$?; "
                        "wait $!; exit $rc"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with gzip.open(gz, "rt") as fh:
        assert len([json.loads(x) for x in fh]) == lines


def test_csv_keys_not_among_the_columns_warn_once_each(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = CsvWriter(str(tmp_path / "items.csv"))
    caplog.set_level(logging.WARNING, "loopcrawl.outputs")
    for item in [{"a": 1}, {"a": 2, "late": 1}, {"a": 3, "late": 2, "later": 3},
                 {"late": 4}]:
        kind, fields, data = item_record(item)
        w.write_item(data, kind, fields)
    w.close()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "'late'" in warned[0] and "'later'" in warned[1]
    with (tmp_path / "items.csv").open(newline="") as fh:
        assert list(csv.reader(fh)) == [["a"], ["1"], ["2"], ["3"], [""]]


def json_array_after(sig: int, site: ServerProcess, tmp_path: Path) -> list[Any]:
    out = tmp_path / f"pages-{sig}.json"
    proc = subprocess.Popen([*LOOPCRAWL, "crawl", site.base_url + "/", "-q", "-o", str(out),
                             "--concurrency", "3", "--per-host", "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while (not out.exists() or out.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    with out.open() as fh:
        data = json.load(fh)
    assert isinstance(data, list)
    return data


def test_json_array_stays_valid_after_ctrl_c_and_a_kill(tmp_path: Path) -> None:
    with ServerProcess(pages=1500, latency_ms=20) as site:
        stopped = json_array_after(signal.SIGINT, site, tmp_path)
        killed = json_array_after(signal.SIGKILL, site, tmp_path)
    assert 0 < len(stopped) < 1500 and 0 < len(killed) < 1500
    assert all(r["url"].startswith(site.base_url) for r in stopped + killed)


@pytest.mark.parametrize("ext", [".csv", ".json", ".warc.gz", ".jsonl.gz"])
def test_state_resumes_every_resumable_format_exactly_once(tmp_path: Path, ext: str) -> None:
    """Killed twice and resumed, the output holds each page once and reads back
    whole: a CSV and a JSON array cut back to a byte offset, a WARC to the end
    of its last record, gzipped JSON lines to the end of a member."""
    out, state = tmp_path / f"pages{ext}", tmp_path / "crawl.db"
    with ServerProcess(pages=800, latency_ms=20) as site:
        cmd = [*LOOPCRAWL, "crawl", site.base_url + "/", "-q", "-o", str(out), "--state",
               str(state), "--concurrency", "4", "--per-host", "4"]
        for _ in range(2):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while (not out.exists() or out.stat().st_size < 20_000) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)  # past a checkpoint, then a kill with lines after it
            proc.kill()
            proc.wait()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        expected = set(Site(800).expected(site.base_url))
    if ext.startswith(".warc"):
        uris = [u for t, u, _ in warc_exchanges(out) if t == "response"]
        assert len(uris) == len(set(uris))
        assert expected <= set(uris)
        return
    rows = read_rows(out)
    urls = [r["url"] for r in rows]
    assert len(urls) == len(set(urls)), "a page is in the output twice"
    assert expected <= {r["final_url"] for r in rows if str(r["status"]) == "200"}


def test_run_items_in_every_format(shop: ServerThread, tmp_path: Path) -> None:
    """``run`` writes items through the same registry; WARC gets the responses."""
    spider = Path(__file__).parent.parent / "examples" / "books.py"
    outs = [tmp_path / f"items{e}" for e in (".json", ".csv", ".parquet", ".db", ".warc")]
    args = [x for p in outs for x in ("-o", str(p))]
    r = cli("run", str(spider), "-q", "--max-pages", "8", *args, timeout=90,
            env={**os.environ, "SHOP_URL": shop.base_url + "/shop/"})
    assert r.returncode == 0, r.stderr
    with outs[0].open() as fh:
        items = json.load(fh)
    assert items
    with outs[1].open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(items)
    assert pq.read_table(outs[2]).num_rows == len(items)
    assert any(t == "response" for t, _, _ in warc_exchanges(outs[4]))


def test_open_outputs_refuses_what_a_state_cannot_resume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="formats that can"):
        open_outputs([str(tmp_path / "p.parquet")], resume_marks=[None])
    with pytest.raises(ConfigError, match="standard output cannot be rewound"):
        open_outputs(["-"], resume_marks=[None])
    spec = OutputSpec(str(tmp_path / "p.out"), "csv", "overwrite")
    with open_outputs([spec]) as outs:
        assert [o.format for o in outs] == ["csv"]
