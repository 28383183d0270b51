"""Settings: every value checked the same way from the command line, ``-s``,
``custom_settings`` and code, with one line naming it as the user wrote it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from loopcrawl import Settings
from loopcrawl.cli import main
from loopcrawl.errors import ConfigError
from loopcrawl.settings import (
    SCRAPY_NAMES,
    SettingField,
    apply_settings,
    parse_setting,
    setting_field,
    settings_fields,
)

NUMERIC = [f for f in settings_fields() if f.type in (int, float)]


def _show(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)


def bad_values(f: SettingField) -> list[tuple[str, Any, str]]:
    """(as typed, as a Python value, the end of the message) for each bad value."""
    number = "a whole number" if f.type is int else "a number"
    assert f.min is not None and f.max is not None
    step = 1 if f.type is int else 0.5
    low = f.min if f.above else f.min - step
    high = f.max + step
    cases = [
        ("nan", math.nan, "must be a finite number, not nan"),
        ("inf", math.inf, "must be a finite number, not inf"),
        ("-inf", -math.inf, "must be a finite number, not -inf"),
        ("abc", "abc", f"must be {number}, not 'abc'"),
        (_show(low), f.type(low),
         f"must be {'more than' if f.above else 'at least'} {_show(f.min)}, not {_show(low)}"),
        (_show(high), f.type(high), f"must be at most {_show(f.max)}, not {_show(high)}"),
    ]
    if f.type is int:
        cases.append(("1.5", 1.5, "must be a whole number, not 1.5"))
    return cases


CASES = [(f, *c) for f in NUMERIC for c in bad_values(f)]
IDS = [f"{f.name}={typed}" for f, typed, _, _ in CASES]


def one_line(result: Any) -> str:
    assert result.exit_code == 2, (result.output, result.stderr)
    assert "Traceback" not in result.stderr
    out = result.stderr.splitlines()
    assert len(out) == 1, result.stderr
    return out[0]


def options(command: str) -> set[str]:
    return {o for p in main.commands[command].params for o in p.opts}


def test_every_numeric_field_has_bounds_help_and_a_unit() -> None:
    assert len(NUMERIC) >= 15
    for f in NUMERIC:
        assert f.min is not None and f.max is not None and f.help and f.unit, f.name
    for f in settings_fields():
        assert f.help, f.name
        assert f.check(f.default) == f.default, f.name  # every default passes its own check
    named = [f.option for f in settings_fields() if f.option]
    assert len(named) == len(set(named))
    assert setting_field("per_host").option == "--per-host"  # type: ignore[union-attr]
    assert setting_field("concurrency").max == 10_000  # type: ignore[union-attr]


@pytest.mark.parametrize("f", NUMERIC, ids=[f.name for f in NUMERIC])
def test_bounds_are_inclusive_and_exact(f: SettingField) -> None:
    """The bounds themselves pass; one step past them does not."""
    assert f.min is not None and f.max is not None
    step = 1 if f.type is int else 0.001
    assert f.parse(_show(f.max)) == f.max
    with pytest.raises(ConfigError):
        f.check(f.type(f.max + step))
    if f.above:
        with pytest.raises(ConfigError):
            f.check(f.type(f.min))
        assert f.check(f.type(f.min + step)) == f.min + step
    else:
        assert f.parse(_show(f.min)) == f.min
        with pytest.raises(ConfigError):
            f.check(f.type(f.min - step))


@pytest.mark.parametrize(("f", "typed", "value", "reason"), CASES, ids=IDS)
def test_bad_number_from_code_names_the_field(f: SettingField, typed: str, value: Any,
                                              reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings(**{f.name: value})
    assert e.value.field == f.name
    assert str(e.value) == f"{f.name} {reason}".replace("'abc'", repr(value))


@pytest.mark.parametrize(("f", "typed", "value", "reason"), CASES, ids=IDS)
def test_bad_number_on_the_command_line(f: SettingField, typed: str, value: Any,
                                        reason: str) -> None:
    assert f.option in options("crawl")
    r = CliRunner().invoke(main, ["crawl", "http://127.0.0.1:9/", f"{f.option}={typed}"])
    assert one_line(r) == f"loopcrawl: error: {f.option} {reason}"


def spider_file(tmp_path: Path, custom: str = "{}") -> str:
    path = tmp_path / "spider.py"
    path.write_text("import math\nfrom loopcrawl import Spider\n\n\n"
                    "class S(Spider):\n    start_urls = ['http://127.0.0.1:9/']\n"
                    f"    custom_settings = {custom}\n\n"
                    "    def parse(self, response):\n        pass\n")
    return str(path)


@pytest.mark.parametrize(("f", "typed", "value", "reason"), CASES, ids=IDS)
def test_bad_number_through_dash_s(f: SettingField, typed: str, value: Any, reason: str,
                                   tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path), "-s", f"{f.name}={typed}"])
    assert one_line(r) == (f"loopcrawl: error: -s {f.name}={typed}: "
                           f"{reason}")


@pytest.mark.parametrize(("f", "typed", "value", "reason"), CASES, ids=IDS)
def test_bad_number_in_custom_settings(f: SettingField, typed: str, value: Any, reason: str,
                                       tmp_path: Path) -> None:
    literal = {"nan": "math.nan", "inf": "math.inf", "-inf": "-math.inf"}.get(typed, repr(value))
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path, f"{{{f.name!r}: {literal}}}")])
    assert one_line(r) == f"loopcrawl: error: custom_settings[{f.name!r}] {reason}"


@pytest.mark.parametrize("args", [
    ["crawl", "http://127.0.0.1:9/", "--delay", "nan"],
    ["crawl", "http://127.0.0.1:9/", "--concurrency", "100000000"],
    ["crawl", "http://127.0.0.1:9/", "--timeout", "inf"],
])
def test_bad_numbers_as_a_subprocess(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "loopcrawl", *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"loopcrawl: error: {args[2]} ")


def test_dash_s_value_as_typed(tmp_path: Path) -> None:
    assert parse_setting("per_host=3") == ("per_host", 3)
    assert parse_setting("per-host=3") == ("per_host", 3)
    assert parse_setting("depth=none") == ("depth", None)
    assert parse_setting("log_level=debug") == ("log_level", "DEBUG")
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path), "-s", "per_host=0"])
    assert one_line(r) == "loopcrawl: error: -s per_host=0: must be at least 1, not 0"
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path), "-s", "obey_robots=maybe"])
    assert one_line(r) == ("loopcrawl: error: -s obey_robots=maybe: must be true or false, "
                           "not 'maybe'")


def test_seeds_as_one_string() -> None:
    with pytest.raises(ConfigError, match=r"seeds must be a list of strings, not one string "
                       r"\(write \('http://example.com/',\) for a single one\)"):
        Settings(seeds="http://example.com/")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^not an http\(s\) URL: 'ftp://x/'$"):
        Settings(seeds=("ftp://x/",))


def test_types_are_not_coerced() -> None:
    for bad in ({"concurrency": "8"}, {"concurrency": True}, {"delay": "1"},
                {"obey_robots": "no"}, {"allow": "x"}, {"headers": {"A": 1}},
                {"scope": "planet"}, {"allow": ["("]}, {"log_level": "loud"}):
        with pytest.raises(ConfigError) as e:
            Settings(**bad)  # type: ignore[arg-type]
        assert e.value.field == next(iter(bad))
    s = Settings(delay=1, allow=["a"], log_level="warning")
    assert s.delay == 1.0 and type(s.delay) is float
    assert s.allow == ("a",) and s.log_level == "WARNING"


def test_scrapy_names_are_answered(tmp_path: Path) -> None:
    for scrapy, ours in [("DOWNLOAD_DELAY", "delay"), ("CONCURRENT_REQUESTS", "concurrency"),
                         ("CONCURRENT_REQUESTS_PER_DOMAIN", "per_host"),
                         ("DEPTH_LIMIT", "depth"), ("ROBOTSTXT_OBEY", "obey_robots"),
                         ("USER_AGENT", "user_agent"), ("DOWNLOAD_TIMEOUT", "timeout"),
                         ("RETRY_TIMES", "retries"), ("CLOSESPIDER_PAGECOUNT", "max_pages"),
                         ("DEFAULT_REQUEST_HEADERS", "headers")]:
        assert SCRAPY_NAMES[scrapy] == ours
        with pytest.raises(ConfigError, match=rf"^custom_settings\['{scrapy}'\]: use {ours}$"):
            apply_settings(Settings(), {scrapy: 1}, "custom_settings[{key!r}]")
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path, "{'DOWNLOAD_DELAY': 1}")])
    assert one_line(r) == "loopcrawl: error: custom_settings['DOWNLOAD_DELAY']: use delay"
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path, "{'concurency': 1}")])
    line = one_line(r)
    assert line.startswith("loopcrawl: error: custom_settings['concurency']: unknown setting "
                           "(did you mean concurrency?); the settings are: allow, ")
    assert all(f.name in line for f in settings_fields() if f.name != "extra")
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path), "-s", "RETRY_TIMES=3"])
    assert one_line(r) == "loopcrawl: error: -s RETRY_TIMES: use retries"


def test_custom_settings_apply_in_order() -> None:
    """Each source is checked on its own; the last one wins."""
    s = apply_settings(Settings(), {"delay": 2, "per_host": 2}, "custom_settings[{key!r}]")
    assert (s.delay, s.per_host) == (2.0, 2)
    with pytest.raises(ConfigError, match=r"^custom_settings\['per_host'\] must be at least 1, "
                       r"not 0$"):
        apply_settings(s, {"per_host": 0}, "custom_settings[{key!r}]")


def test_hostile_values_stay_one_short_line(tmp_path: Path) -> None:
    """Numbers past any float and values of any length: one short line, never
    an OverflowError or a screenful."""
    for kw in ({"concurrency": 10**400}, {"delay": 10**400}, {"max_response_size": 10**100}):
        with pytest.raises(ConfigError, match=r"must be at most .*, not \d{40}\.\.\. \(\d+ "
                           r"characters\)$"):
            Settings(**kw)  # type: ignore[arg-type]
    for value in ("1" + "0" * 5000, "x" * 10_000, "9" * 100):
        r = CliRunner().invoke(main, ["crawl", "http://127.0.0.1:9/", "--per-host", value])
        assert len(one_line(r)) < 140
    r = CliRunner().invoke(main, ["run", spider_file(tmp_path), "-s", "delay=" + "1" * 500])
    assert len(one_line(r)) < 160
