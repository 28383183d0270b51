"""docs/state.md's smaller promises, each at its edge, on a small site:
the output cut back to its mark on resume (and refused when shorter by one
byte), a warning when settings change, --max-pages across runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import PageServer


def _site(pages: PageServer, n: int = 6) -> None:
    links = [f"/p{i}" for i in range(n)]
    pages.add("/", links=links)
    for p in links:
        pages.add(p)


def crawl(pages: PageServer, out: Path, state: Path, *extra: str
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopcrawl", "crawl", pages.url + "/", "-o",
                           str(out), "--state", str(state), "-q", *extra],
                          capture_output=True, text=True, timeout=60)


def test_resume_cuts_the_output_back_to_its_mark(pages: PageServer, tmp_path: Path) -> None:
    """Bytes after the last checkpoint (a torn line, here) go on resume."""
    _site(pages)
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    assert crawl(pages, out, state).returncode == 0
    done = out.read_bytes()
    assert len(done.splitlines()) == 7
    with out.open("ab") as f:
        f.write(b'{"url": "torn')
    r = crawl(pages, out, state)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == done


def test_an_output_shorter_than_its_mark_is_refused_untouched(pages: PageServer,
                                                                tmp_path: Path) -> None:
    _site(pages)
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    assert crawl(pages, out, state).returncode == 0
    cut = out.read_bytes()[:-1]  # one byte short
    out.write_bytes(cut)
    r = crawl(pages, out, state)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "changed since" in r.stderr
    assert out.read_bytes() == cut


def test_changed_settings_warn_and_go_on(pages: PageServer, tmp_path: Path) -> None:
    """A first run stopped by --max-pages 2, then resumed with another --depth:
    a warning naming the option, and the crawl goes on with the new value."""
    for i in range(4):
        pages.add(f"/d{i}", links=[f"/d{i + 1}"])
    pages.add("/", links=["/d0"])
    out, state = tmp_path / "pages.jsonl", tmp_path / "crawl.db"
    assert crawl(pages, out, state, "--depth", "9", "--max-pages", "2").returncode == 0
    r = subprocess.run([sys.executable, "-m", "loopcrawl", "crawl", pages.url + "/", "-o",
                        str(out), "--state", str(state), "--depth", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "warning: --depth differs" in r.stderr
    urls = sorted(json.loads(line)["url"].removeprefix(pages.url)
                  for line in out.read_text().splitlines())
    assert urls == ["/", "/d0", "/d1"]  # depth 2 from the seed, not 9
