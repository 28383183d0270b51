"""What every output is: the roles it takes, and the file it writes to.

An output takes one or more roles, declared on its class:

- ``records``: one page record per request (``loopcrawl crawl``), the
  columns of ``PAGE_COLUMNS``;
- ``items``: what a spider's callbacks yield (``loopcrawl run``);
- ``responses``: every exchange, request and response (WARC).

A ``resumable`` output can be part of a ``--state`` checkpoint: ``tell()``
gives a mark after ``flush()``, and reopening it with ``resume_at=`` that
mark drops whatever was written after it, so each page is in it once
however often the crawl was killed.

``ByteFile`` is the byte-stream half of JSONL, JSON, CSV and WARC: it
writes, cuts back and fsyncs, and keeps the durability steps (fsync,
truncate) to regular files, so a pipe, ``/dev/null`` or ``/dev/stdout``
takes the same bytes without an error at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal

from ..errors import ConfigError, OutputError, StateError

if TYPE_CHECKING:
    from ..http import Request
    from ..net.fetched import Fetched

Role = Literal["records", "items", "responses"]
Mode = Literal["append", "overwrite"]

# The columns of a page record in every tabular format (CSV, SQLite, Parquet),
# in this order, with their types; JSONL and JSON carry the same keys.
# docs/output.md says what each means.
PAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("url", "text"),
    ("final_url", "text"),
    ("status", "integer"),
    ("depth", "integer"),
    ("referrer", "text"),
    ("title", "text"),
    ("content_type", "text"),
    ("bytes", "integer"),
    ("fetched_at", "timestamp"),
    ("elapsed_ms", "real"),
    ("links", "integer"),
    ("redirects", "integer"),
    ("error", "text"),
    ("message", "text"),
)
PAGE_FIELDS: tuple[str, ...] = tuple(name for name, _ in PAGE_COLUMNS)


def page_values(record: dict[str, Any]) -> list[Any]:
    """A page record's values in ``PAGE_COLUMNS`` order (the JSON form leaves
    out ``redirects`` when 0, and ``error``/``message`` when it succeeded)."""
    values = [record.get(name) for name in PAGE_FIELDS]
    if values[_REDIRECTS] is None:
        values[_REDIRECTS] = 0
    return values


_REDIRECTS = PAGE_FIELDS.index("redirects")


class Output:
    """One place a crawl writes to, in one format.

    The engine hands each output what its ``roles`` take: page records
    (``write_record``) when there is no spider, a spider's items
    (``write_item``), and every response (``write_response``). ``flush()``
    hands what is buffered to the OS and raises ``OutputError`` if it cannot;
    ``close()`` flushes and lets go of the file.
    """

    format: ClassVar[str] = ""
    roles: ClassVar[frozenset[Role]] = frozenset()
    resumable: ClassVar[bool] = False

    path: str
    count: int = 0  # records, items or exchanges written

    def takes(self, role: Role) -> bool:
        return role in self.roles

    def write_record(self, record: dict[str, Any]) -> None:
        """Write one page record (``FetchRecord.to_dict()``)."""
        raise TypeError(f"{self.format} output takes no page records")

    def write_item(self, item: dict[str, Any], kind: str, fields: tuple[str, ...] | None) -> None:
        """Write one item (JSON-compatible values); ``kind`` is its type's name
        and ``fields`` its declared fields (None for a dict)."""
        raise TypeError(f"{self.format} output takes no items")

    def write_response(self, request: Request, fetched: Fetched) -> None:
        """Keep one exchange: what was sent (``fetched.method``,
        ``request_headers``, ``request_body``) and what came back."""
        raise TypeError(f"{self.format} output takes no responses")

    def flush(self) -> None:
        """Hand every buffered record to the OS."""

    def tell(self) -> Any:
        """Where the output ends after ``flush()``, as a JSON value (resumable only)."""
        raise TypeError(f"{self.format} output cannot be resumed")

    def fsync(self) -> None:
        """Make what was flushed durable (may run on a worker thread)."""

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}>"


def is_regular(path: str) -> bool:
    """True if ``path`` is a regular file, or does not exist yet (it will be one)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def cannot_write(path: str, e: OSError) -> ConfigError:
    return ConfigError(f"cannot write {path}: {e.strerror or e}")


class ByteFile:
    """A byte stream to ``path`` ("-": standard output), written unbuffered.

    ``append``: keep what the file holds (else it is emptied). ``resume_at``:
    cut it back to that byte offset (a checkpoint's mark), for a resumed
    crawl. Truncating and fsyncing are done only where the target is a
    regular file: a pipe or a device cannot be rewound, and fsync on one
    fails (EINVAL).

    A failed write (disk full, a closed pipe) raises ``OutputError``, and
    every later write raises it again without touching the file.
    """

    def __init__(self, path: str, *, append: bool = False, resume_at: int | None = None) -> None:
        self.path = path
        self.error: OutputError | None = None
        self.offset = 0  # bytes in the file, written or found
        if path == "-":
            self._fh: IO[bytes] = sys.stdout.buffer
            self._owned = False
            self.regular = False
            return
        try:
            # Unbuffered: our own batches are the buffer, and no hidden one
            # is left half-written when the disk fills up.
            mode = "ab" if append or resume_at is not None else "wb"
            if is_regular(path):
                mode += "+"  # readable too: JSON and CSV read what an existing file holds
            self._fh = open(path, mode, buffering=0)  # noqa: SIM115
        except OSError as e:
            raise cannot_write(path, e) from None
        self._owned = True
        st = os.fstat(self._fh.fileno())
        self.regular = stat.S_ISREG(st.st_mode)
        if not self.regular:
            if resume_at:
                self._fh.close()
                raise ConfigError(f"{path} is not a regular file: a crawl with --state "
                                  "cannot be resumed into it")
            return
        size = st.st_size
        if resume_at is not None:
            if size < resume_at:
                self._fh.close()
                raise StateError(
                    f"{path} holds {size:,} bytes, but the crawl state recorded "
                    f"{resume_at:,} at its last checkpoint: the output was changed since; "
                    "restore it, or start over with a new state file")
            self.truncate(resume_at)
            size = resume_at
        self.offset = size

    def fileno(self) -> int:
        return self._fh.fileno()

    def write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        try:
            view = memoryview(data)
            while view:  # an unbuffered write may be partial
                n = self._fh.write(view)
                if not n:
                    raise OSError(errno.EIO, "the write made no progress")
                self.offset += n
                view = view[n:]
            if not self._owned:
                self._fh.flush()
        except OSError as e:
            self.error = OutputError(f"cannot write {self.path}: {e.strerror or e}")
            raise self.error from None

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (regular files only)."""
        try:
            os.ftruncate(self._fh.fileno(), size)
            os.lseek(self._fh.fileno(), size, os.SEEK_SET)  # no hole when not O_APPEND
        except OSError as e:
            raise OutputError(f"cannot truncate {self.path}: {e.strerror or e}") from None
        self.offset = size

    def fsync(self) -> None:
        if not self.regular:
            return
        try:
            os.fsync(self._fh.fileno())
        except OSError as e:
            self.error = OutputError(f"cannot write {self.path}: {e.strerror or e}")
            raise self.error from None

    def close(self) -> None:
        if self._owned:
            with contextlib.suppress(OSError):
                self._fh.close()


class FileOutput(Output):
    """An output that appends bytes to one ``ByteFile``: what a checkpoint
    needs of it (the flushed length, fsync) and its close live here once; a
    format only says which bytes it has buffered (``_take``)."""

    _file: ByteFile

    def _take(self) -> bytes:
        """The bytes buffered since the last flush, the buffer emptied."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write what is buffered; raise ``OutputError`` if it cannot be."""
        f = self._file
        if f.error is not None:
            raise f.error
        data = self._take()
        if data:
            f.write(data)

    def tell(self) -> int:
        """The size of the output after the last flush: where the next record starts."""
        return self._file.offset

    def fsync(self) -> None:
        """Make what was flushed durable (regular files only); safe from another thread."""
        self._file.fsync()

    def close(self) -> None:
        try:
            if self._file.error is None:  # else already reported: just let go of the file
                self.flush()
                self.fsync()
        finally:
            self._file.close()
