"""docs/settings.md is the settings' own metadata, written out: it cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loopcrawl.settings import SCRAPY_NAMES, settings_fields
from loopcrawl.settings_doc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_the_committed_reference_is_what_the_fields_say() -> None:
    assert DOC.read_text() == render(), (
        "docs/settings.md differs from the Settings fields: run "
        "`python -m loopcrawl.settings_doc > docs/settings.md`")


def test_every_field_and_scrapy_name_is_in_it() -> None:
    text = render()
    for f in settings_fields():
        assert f"| `{f.name}` |" in text
        if f.option:
            assert f"`{f.option}`" in text
    for name in SCRAPY_NAMES:
        assert f"| `{name}` |" in text
    assert "| `per_host` | `--per-host` | 8 | 1 … 10,000 (whole) | requests |" in text


def test_the_module_prints_it() -> None:
    r = subprocess.run([sys.executable, "-m", "loopcrawl.settings_doc"], capture_output=True,
                       text=True, timeout=60, check=True)
    assert r.stdout == render()
