"""Where the log goes: standard error (above the live display) or a file.

The library logs through ``logging`` under ``loopcrawl`` (failures with their
URL and kind, robots.txt outcomes, retries and back-offs at INFO or DEBUG;
problems the user should fix at WARNING and ERROR). A spider's
``self.logger`` is ``loopcrawl.spider.NAME``. Which levels show (see
``Settings.log_level``): what ``--log-level`` says, for everything; else INFO
for spiders, as Scrapy shows ``self.logger.info``, and WARNING for the rest,
so a plain crawl prints only its display; ``--quiet``: ERROR.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from ..errors import ConfigError

_ours: list[logging.Handler] = []  # what configure_logging installed, for the next call


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each message, so the live display
    (which redirects it while drawing) prints the message above itself."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _Format(logging.Formatter):
    """``loopcrawl: warning: ...`` for the library (as the CLI's own warnings),
    ``[NAME] info: ...`` for a spider, ``LOGGER: level: ...`` for others; a
    file's lines start with the time."""

    def __init__(self, timed: bool) -> None:
        super().__init__("%(asctime)s %(message)s" if timed else "%(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        name, level = record.name, record.levelname.lower()
        if name.startswith("loopcrawl.spider."):
            who = f"[{name.removeprefix('loopcrawl.spider.')}] {level}:"
        elif name == "loopcrawl" or name.startswith("loopcrawl."):
            who = f"loopcrawl: {level}:"
        else:
            who = f"{name}: {level}:"
        record.message = f"{who} {record.getMessage()}"
        return super().formatMessage(record)


def configure_logging(level: str | None = None, file: str | None = None, *,
                      quiet: bool = False) -> None:
    """Send log messages to standard error, or to ``file`` (appended), at
    ``level`` (a name from ``settings.LOG_LEVELS``; None: the defaults above).
    Called again, it replaces what it set before (tests, a second crawl)."""
    root = logging.getLogger()
    for h in _ours:
        root.removeHandler(h)
        h.close()
    _ours.clear()
    handler: logging.Handler
    if file is not None:
        try:
            handler = logging.FileHandler(file, encoding="utf-8", delay=False)
        except OSError as e:
            raise ConfigError(f"cannot write the log file {file}: {e.strerror or e}") from None
    else:
        handler = _Stderr()
    handler.setFormatter(_Format(timed=file is not None))
    root.addHandler(handler)
    _ours.append(handler)
    library = level or ("ERROR" if quiet else "WARNING")
    root.setLevel(library)
    logging.getLogger("loopcrawl").setLevel(library)
    logging.getLogger("loopcrawl.spider").setLevel(level or ("ERROR" if quiet else "INFO"))
