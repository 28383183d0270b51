"""One registry of output formats, by file name, for ``crawl``, ``run`` and code.

``open_outputs(["pages.csv", "crawl.warc.gz"])`` checks every name first
(format, place, ``--state``), then opens each: a bad one is a ``ConfigError``
(one line, exit 2 on the command line) before any request is sent.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import PAGE_FIELDS, Mode, Output, Role, is_regular
from .csv import CsvWriter
from .json import JsonWriter
from .jsonl import JsonlWriter
from .parquet import ParquetWriter, _pyarrow
from .sqlite import SqliteWriter
from .warc import WarcWriter

# Format name -> its writer and the file endings that choose it (without --format).
FORMATS: dict[str, tuple[type[Output], tuple[str, ...]]] = {
    "jsonl": (JsonlWriter, (".jsonl", ".jsonl.gz", ".ndjson", ".jl")),
    "json": (JsonWriter, (".json",)),
    "csv": (CsvWriter, (".csv",)),
    "sqlite": (SqliteWriter, (".db", ".sqlite", ".sqlite3")),
    "warc": (WarcWriter, (".warc", ".warc.gz")),
    "parquet": (ParquetWriter, (".parquet",)),
}
_STDOUT_OK = ("jsonl", "json", "csv", "warc", "parquet")  # formats a stream can take


@dataclass(frozen=True)
class OutputSpec:
    """Where an output goes (``-``: standard output), in which format, and
    what to do with a file that exists (None: the caller's ``mode``)."""

    path: str
    format: str
    mode: Mode | None = None


def format_of(path: str, fmt: str | None = None) -> str:
    """The format for ``path``: ``fmt`` if given, else by its ending; JSONL for
    ``-`` and for a stream without one (``/dev/stdout``, a pipe: ``>(gzip)``)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        return "jsonl"
    low = path.lower()
    for name, (_, endings) in FORMATS.items():
        if low.endswith(endings):
            return name
    if os.path.isdir(path):
        raise ConfigError(f"cannot write {path}: it is a directory")
    if path.startswith("/dev/") or not is_regular(path):
        return "jsonl"
    raise ConfigError(f"cannot tell the format of {path} from its name: end it in "
                      f"{', '.join(e for _, es in FORMATS.values() for e in es)}, or give "
                      f"--format ({', '.join(FORMATS)})")


def resumable_formats() -> list[str]:
    return [name for name, (cls, _) in FORMATS.items() if cls.resumable]


def parse_outputs(paths: Sequence[str | OutputSpec], fmt: str | None = None, *,
                  resumable: bool = False) -> list[OutputSpec]:
    """Check ``paths`` without opening them: a known format each, a place it
    can go, no name twice; with ``resumable`` (a ``--state`` crawl) only
    formats a checkpoint can cut back. ``ConfigError`` otherwise."""
    specs = []
    seen: set[str] = set()
    for given in paths:
        spec = given if isinstance(given, OutputSpec) else OutputSpec(given, format_of(given, fmt))
        path = spec.path
        if spec.format not in FORMATS:
            format_of(path, spec.format)  # the error naming the formats
        key = path if path == "-" else os.path.abspath(path)
        if key in seen:
            raise ConfigError(f"{path} is given twice as an output")
        seen.add(key)
        cls = FORMATS[spec.format][0]
        if path == "-":
            if spec.format not in _STDOUT_OK:
                raise ConfigError(f"{spec.format} output needs a file, not standard output")
            if resumable:
                raise ConfigError("--state needs -o FILE: standard output cannot be rewound "
                                  "when a crawl resumes")
        else:
            check_path(path)
            if spec.format == "sqlite" and not is_regular(path):
                raise ConfigError(f"cannot write {path}: an SQLite database needs a regular "
                                  "file (not a pipe or a device)")
        if spec.format == "parquet":
            _pyarrow()
        if resumable and not cls.resumable:
            raise ConfigError(
                f"{path}: a {spec.format} file cannot be cut back to a checkpoint, so a "
                f"crawl with --state cannot write it; formats that can: "
                f"{', '.join(resumable_formats())}")
        specs.append(spec)
    return specs


def check_path(path: str) -> None:
    """A clear ``ConfigError`` if ``path`` cannot be written (before any request)."""
    p = Path(path)
    parent = p.absolute().parent
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise ConfigError(f"cannot write {path}: {up} is a file, not a directory")
            if up != parent:
                raise ConfigError(f"cannot write {path}: directory {parent} does not exist")
            break
    if p.is_dir():
        raise ConfigError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"cannot write {path}: permission denied")


class Outputs(Sequence[Output]):
    """The open outputs of one crawl, with who takes which role.

    Close them (``close()``, or ``with``) when the crawl is over; closing
    goes on past a failing one and raises its error at the end.
    """

    def __init__(self, outputs: Sequence[Output] = ()) -> None:
        self._all = list(outputs)

    def __getitem__(self, i: Any) -> Any:
        return self._all[i]

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Output]:
        return iter(self._all)

    def taking(self, role: Role) -> list[Output]:
        return [o for o in self._all if o.takes(role)]

    @property
    def paths(self) -> list[str]:
        return [o.path for o in self._all]

    def tell(self) -> list[Any]:
        """Each output's mark after ``flush()`` (resumable outputs only)."""
        return [o.tell() for o in self._all]

    def flush(self) -> None:
        for o in self._all:
            o.flush()

    def close(self) -> None:
        error: BaseException | None = None
        for o in self._all:
            try:
                o.close()
            except BaseException as e:  # close the rest, then report the first
                error = error or e
        self._all = []
        if error is not None:
            raise error

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(spec: OutputSpec | str, *, mode: Mode = "append", resume_at: Any = None,
                role: Role = "records") -> Output:
    """Open one output (see ``open_outputs``)."""
    if isinstance(spec, str):
        spec = OutputSpec(spec, format_of(spec))
    cls = FORMATS[spec.format][0]
    path = spec.path
    append = mode == "append"
    if cls is ParquetWriter:
        if resume_at is not None:
            raise ConfigError(f"{path}: a parquet file cannot be resumed")
        if append and path != "-" and is_regular(path) and os.path.exists(path) \
                and os.path.getsize(path):
            raise ConfigError(f"{path} exists, and a Parquet file cannot be appended to: "
                              "overwrite it (-O) or write another file")
        return ParquetWriter(path)
    if cls is CsvWriter:
        return CsvWriter(path, append=append, resume_at=resume_at,
                         columns=PAGE_FIELDS if role == "records" else None)
    if cls is SqliteWriter:
        return SqliteWriter(path, append=append, resume_at=resume_at)
    return cls(path, append=append, resume_at=resume_at)  # type: ignore[call-arg]


def open_outputs(
    specs: Sequence[OutputSpec | str],
    *,
    fmt: str | None = None,
    mode: Mode = "append",
    resume_marks: Sequence[Any] | None = None,
    role: Role = "records",
) -> Outputs:
    """Open every output of a crawl; ``ConfigError`` (nothing left open) if any fails.

    ``specs``: file names (``-``: standard output), their format by ending
    unless ``fmt``; or ``OutputSpec``s. ``mode``: what to do with a file that
    exists (unless its spec says): ``append`` (``-o``, as Scrapy) or
    ``overwrite`` (``-O``).
    ``resume_marks``: for a ``--state`` crawl, each output's mark at the last
    checkpoint (``SqliteFrontier.bind_outputs``; None: a fresh one); every
    output must then be resumable. ``role``: what the crawl writes,
    ``records`` (``crawl``) or ``items`` (``run``); WARC takes responses in
    both.
    """
    checked = parse_outputs(specs, fmt, resumable=resume_marks is not None)
    checked = [OutputSpec(s.path, s.format, s.mode or mode) for s in checked]
    marks = list(resume_marks) if resume_marks is not None else [None] * len(checked)
    if len(marks) != len(checked):
        raise ValueError("one resume mark per output")
    opened = Outputs()
    try:
        for spec, mark in zip(checked, marks, strict=True):
            opened._all.append(open_output(spec, mode=spec.mode or mode, resume_at=mark,
                                           role=role))
    except BaseException:
        with contextlib.suppress(Exception):
            opened.close()
        raise
    return opened
