"""The options that become Settings, generated from the Settings fields.

One place maps the command line to settings, for ``crawl``, ``run`` and
``shell`` alike: each field with an ``option`` (``settings_fields()``) is one
option, with the field's help, default and metavar. Values are read and
checked by the field (``setting_type.SettingValue``, ``SettingField.parse``),
so ``--delay nan`` and ``-s delay=nan`` get the same answer, naming what the
user typed. Only the
options given on the command line become overrides: a default never hides a
spider's ``custom_settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click
from click.core import ParameterSource

from ..errors import ConfigError
from ..settings import SettingField, parse_setting, settings_fields
from .setting_type import SettingValue

_PREFIX = "setting__"  # the parameters' names: never those of a command's own options
# The settings of a session, for commands that fetch but do not crawl (shell).
SESSION = ("headers", "http_auth", "proxy", "cookies", "http_pool", "ca_bundle", "verify_tls",
           "user_agent", "timeout",
           "connect_timeout", "read_timeout", "max_response_size", "max_redirects")
_UNIT_METAVAR = {"seconds": "SECONDS", "bytes": "BYTES"}


def _fields(names: Iterable[str] | None) -> list[SettingField]:
    wanted = set(names) if names is not None else None
    return [f for f in settings_fields()
            if f.option is not None and (wanted is None or f.name in wanted)]


def _repeatable(f: SettingField) -> bool:
    """Given once per value: a list (``--allow``), or headers (``-H``)."""
    return f.type is dict or (f.type is tuple and not f.optional)


class _Workers(SettingValue):
    """``--workers``: ``auto`` is one per usable core; anything else is checked
    by the setting as every number is."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            from ..workers import usable_cores

            return usable_cores()
        return super().convert(value, param, ctx)


_TYPES: dict[str, Callable[[str], SettingValue]] = {"workers": _Workers}
_METAVARS = {"workers": "N|auto"}


def _option(f: SettingField) -> Callable[[Any], Any]:
    assert f.option is not None
    names = [f.option, *([f.short] if f.short else []), _PREFIX + f.name]
    if f.type is bool:
        return click.option(*names, is_flag=True, default=False, help=f.help)
    default = None if _repeatable(f) or f.default is None else f.default
    kind: Any = (click.Choice(f.choices, case_sensitive=False) if f.choices
                 else str if _repeatable(f)
                 else _TYPES.get(f.name, SettingValue)(f.name))
    metavar = None if f.choices else f.metavar or _METAVARS.get(f.name) or (
        _UNIT_METAVAR.get(f.unit or "", "N") if f.type in (int, float) else "TEXT")
    return click.option(*names, type=kind, default=default, metavar=metavar,
                        multiple=_repeatable(f), show_default=default is not None,
                        help=f.help + (" Repeatable." if _repeatable(f) and
                                       "repeatable" not in f.help else ""))


def settings_options(names: Iterable[str] | None = None) -> Callable[[Any], Any]:
    """A decorator adding an option for each Settings field (those in ``names``
    only, if given); the command reads them back with ``given_settings``."""
    fields = _fields(names)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields):
            command = _option(f)(command)
        return command

    return decorate


def set_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``-s KEY=VALUE``: any Settings field by its name."""
    return click.option(
        "-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Any setting by its name (docs/settings.md): concurrency=8, obey_robots=false, "
        "... Repeatable; an option given too wins.")(command)


def _value(f: SettingField, raw: Any) -> Any:
    """The field's value from what click parsed (single values: by ``SettingValue``)."""
    if f.type is bool:
        return not f.default  # the flag says the other way: --ignore-robots, --no-cookies
    if f.type is dict:  # -H 'Name: value', repeatable
        headers = {}
        for text in raw:
            name, colon, value = text.partition(":")
            if not colon or not name.strip():
                raise ConfigError(f"must be 'Name: value', not {text!r}", field=f.name)
            headers[name.strip()] = value.strip()
        return f.check(headers)
    return f.check(tuple(raw)) if _repeatable(f) else raw


def given_settings(ctx: click.Context, params: dict[str, Any],
                   sets: Iterable[str] = ()) -> dict[str, Any]:
    """The settings the command line gives: ``-s`` values, then the options
    given (over them), removed from ``params``. ConfigError naming the option
    or the ``-s`` as typed."""
    values: dict[str, Any] = dict(parse_setting(s) for s in sets)
    for key in [k for k in params if k.startswith(_PREFIX)]:
        raw = params.pop(key)
        if ctx.get_parameter_source(key) is not ParameterSource.COMMANDLINE:
            continue
        f = next(f for f in settings_fields() if f.name == key[len(_PREFIX):])
        try:
            values[f.name] = _value(f, raw)
        except ConfigError as e:
            raise ConfigError(e.named(str(f.option))) from None
    return values


def _positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value > 0 or value == float("inf"):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}")
    return value


def report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--stats, --report, --progress-interval: what a crawl leaves besides its output."""
    f = click.option("--progress-interval", type=float, default=5.0, show_default=True,
                     metavar="SECONDS", callback=_positive,
                     help="When stderr is not a terminal (CI, a log file): seconds between "
                     "two progress lines.")(f)
    f = click.option("--report", "report_path", metavar="FILE",
                     help="At the end, write an HTML report of the crawl here (one "
                     "self-contained file of charts).")(f)
    return click.option("--stats", "stats_path", metavar="FILE",
                        help="At the end, write the crawl's counters here as JSON "
                        "(docs/stats.md).")(f)
