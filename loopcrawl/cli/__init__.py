"""The command line: parse options, call the library, print. Nothing else.

``crawl.py`` (``crawl``, ``run``: both through ``core.runner.CrawlRun``),
``distributed.py`` (``seed``, ``worker``, ``status --redis``: a crawl shared
through Redis),
``tools.py`` (``status``, ``testsite``, ``demo``, ``bench``, ``shell``),
``options.py`` (the options that become Settings), ``common.py`` (one-line
errors, the printed result), ``progress.py`` (the live display, the summary).
Exit codes: README, "Exit codes"; they are ``core.runner``'s ``EXIT_*``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.runner import EXIT_USAGE
from .crawl import crawl, run
from .distributed import seed, worker
from .tools import bench, demo, report, shell, status, testsite

__all__ = ["main"]


class _Main(click.Group):
    """The ``loopcrawl`` group: a usage error (an unknown option, a value of
    the wrong type) is one line naming it and exit 2, as every other bad
    input; click would print the usage block around it."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `loopcrawl`: the help
            click.echo(e.format_message(), err=True)
            sys.exit(EXIT_USAGE)
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "loopcrawl"
            click.echo(f"loopcrawl: error: {e.format_message()} (see {cmd} --help)", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as e:
            click.echo(f"loopcrawl: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("loopcrawl: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loopcrawl")
def main() -> None:
    """loopcrawl: a fast, polite web crawler on the asyncio event loop."""


for _command in (crawl, run, seed, worker, status, report, testsite, demo, bench, shell):
    main.add_command(_command)

if __name__ == "__main__":
    main()
