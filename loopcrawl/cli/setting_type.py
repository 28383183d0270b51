"""A command-line option's value read by its Settings field.

``click.option("--per-host", type=SettingValue("per_host"))`` parses and
checks the value as the field does everywhere else (``-s``,
``custom_settings``, code) and answers a bad one with one line naming the
option, exit 2: click's own int and float types accept ``nan`` and ``inf``
and print a usage block instead.
"""

from __future__ import annotations

from typing import IO, Any

import click

from ..errors import ConfigError
from ..settings import setting_field

EXIT_USAGE = 2


class OneLineError(click.ClickException):
    """``loopcrawl: error: MESSAGE`` on stderr and exit 2, inside click's parsing."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"loopcrawl: error: {self.message}", err=True)


class SettingValue(click.ParamType):
    """The value of the Settings field ``name``, parsed and checked by it."""

    def __init__(self, name: str) -> None:
        field = setting_field(name)
        if field is None:
            raise ValueError(f"no Settings field {name!r}")
        self.field = field
        self.name = field.type.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        label = self.field.option or (param.opts[-1] if param is not None else self.field.name)
        try:
            return self.field.parse(value) if isinstance(value, str) else self.field.check(value)
        except ConfigError as e:
            raise OneLineError(e.named(label)) from None
