"""The failure kinds are declared once (``errors.ErrorKind``), documented once
(``docs/output.md``), written as plain strings, and every error loopcrawl
raises on purpose is under the one tree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson

from loopcrawl import errors
from loopcrawl.core.stats import CrawlStats
from loopcrawl.errors import ErrorKind
from loopcrawl.http import FetchRecord

DOC = Path(__file__).resolve().parent.parent / "docs" / "output.md"


def test_every_kind_is_documented_once_and_nothing_else() -> None:
    section = DOC.read_text().split("## Failure kinds", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (?!meaning)", section, flags=re.M)
    assert sorted(rows) == sorted(k.value for k in ErrorKind)
    assert len(rows) == len(set(rows))


def test_the_kinds_are_public() -> None:
    import loopcrawl

    assert loopcrawl.ErrorKind is ErrorKind and "ErrorKind" in loopcrawl.__all__
    assert loopcrawl.__all__ == sorted(loopcrawl.__all__)


def test_the_module_names_are_the_members() -> None:
    for kind in ErrorKind:
        assert getattr(errors, kind.name) is kind
    assert not hasattr(errors, "DECODE_ERROR")  # never used: gone


def test_a_record_and_the_summary_serialize_the_plain_string() -> None:
    rec = FetchRecord("http://h/", 0, None, 0.0, error=ErrorKind.CONNECTION_REFUSED,
                      message="refused")
    assert b'"error":"connection_refused"' in orjson.dumps(rec.to_dict())
    stats = CrawlStats()
    stats.record(rec)
    summary = stats.summary()
    assert orjson.dumps(summary["errors"]) == b'{"connection_refused":1}'
    assert json.dumps(summary["errors"]) == '{"connection_refused": 1}'
    assert all(type(k) is str for k in summary["errors"])


def test_retried_and_policy_sets() -> None:
    assert {ErrorKind.TIMEOUT, ErrorKind.CONNECTION_ERROR,
                                ErrorKind.CONNECTION_REFUSED, ErrorKind.DNS_ERROR,
                                ErrorKind.PROXY_ERROR} == errors.TRANSIENT
    assert ErrorKind.TLS_ERROR in errors.HOST_UNREACHABLE - errors.TRANSIENT
    assert {ErrorKind.ROBOTS_DENIED, ErrorKind.REDIRECT_REFUSED, ErrorKind.TRAP} == errors.POLICY


def test_one_exception_tree() -> None:
    from loopcrawl.net.robots import RobotsUnavailable
    from loopcrawl.spider.pipelines import DropItem

    for cls in (errors.ConfigError, errors.StateError, errors.OutputError, DropItem,
                errors.FetchError):
        assert issubclass(cls, errors.LoopcrawlError), cls
    for cls in (errors.TooLarge, errors.RedirectError, RobotsUnavailable):
        assert issubclass(cls, errors.FetchError), cls
    e = RobotsUnavailable("robots.txt answered 503", ErrorKind.ROBOTS_UNREACHABLE, 30.0)
    assert (e.kind, e.retry_in) == ("robots_unreachable", 30.0)
    # The tree drawn in the docstring names each of them.
    doc = errors.__doc__ or ""
    for name in ("ConfigError", "StateError", "OutputError", "DropItem", "FetchError",
                 "TooLarge", "RedirectError", "RobotsUnavailable"):
        assert name in doc, name
