"""JSON Lines output: one record per line, written in batches."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import IO, Any

import orjson

from ..errors import ConfigError, OutputError, StateError


class JsonlWriter:
    """Appends records as JSON lines; ``path`` "-" is standard output.

    Lines are buffered and written in batches of ``batch`` records (one
    ``write`` syscall each), and always flushed on ``close()``.

    ``resume_at``: reopen an existing output for a resumed crawl, cut back to
    that byte offset (the last checkpoint), so lines written after it, torn
    or whole, are dropped and written again by the resumed crawl.

    A failed write (disk full, file size limit) raises ``OutputError``, and
    every later flush raises it again without touching the file: what was
    written after the last checkpoint is cut away on resume anyway.
    """

    def __init__(
        self,
        path: str,
        *,
        batch: int = 256,
        append: bool = False,
        resume_at: int | None = None,
    ) -> None:
        self.path = path
        self._batch = batch
        self._buf: list[bytes] = []
        self._error: OutputError | None = None
        self.count = 0
        self._offset = 0  # bytes in the file after the last flush
        if path == "-":
            self._fh: IO[bytes] = sys.stdout.buffer
            self._owned = False
            return
        try:
            # Unbuffered: our own batches are the buffer, and no hidden one
            # is left half-written when the disk fills up.
            mode = "ab" if append or resume_at is not None else "wb"
            self._fh = open(path, mode, buffering=0)  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
        self._owned = True
        size = os.fstat(self._fh.fileno()).st_size
        if resume_at is not None:
            if size < resume_at:
                self._fh.close()
                raise StateError(
                    f"{path} holds {size:,} bytes, but the crawl state recorded "
                    f"{resume_at:,} at its last checkpoint: the output was changed since; "
                    "restore it, or start over with a new state file")
            try:
                os.ftruncate(self._fh.fileno(), resume_at)
            except OSError as e:
                self._fh.close()
                raise ConfigError(f"cannot truncate {path}: {e.strerror or e}") from None
            size = resume_at
        self._offset = size

    def write(self, record: dict[str, Any]) -> None:
        self._buf.append(orjson.dumps(record))
        self.count += 1
        if len(self._buf) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines; raise ``OutputError`` if they cannot be."""
        if self._error is not None:
            raise self._error
        try:
            if self._buf:
                self._buf.append(b"")
                data = memoryview(b"\n".join(self._buf))
                self._buf.clear()
                while data:  # an unbuffered write may be partial
                    n = self._fh.write(data)
                    if not n:
                        raise OSError(errno.EIO, "the write made no progress")
                    self._offset += n
                    data = data[n:]
            self._fh.flush()
        except OSError as e:
            self._error = OutputError(f"cannot write {self.path}: {e.strerror or e}")
            raise self._error from None

    def tell(self) -> int:
        """The size of the output after the last flush: where the next line starts."""
        return self._offset

    def fsync(self) -> None:
        """Make what was flushed durable; safe to call from another thread."""
        if not self._owned:
            return
        try:
            os.fsync(self._fh.fileno())
        except OSError as e:
            self._error = OutputError(f"cannot write {self.path}: {e.strerror or e}")
            raise self._error from None

    def close(self) -> None:
        if self._error is not None:  # already reported; just let go of the file
            if self._owned:
                with contextlib.suppress(OSError):
                    self._fh.close()
            return
        try:
            self.flush()
            self.fsync()
        finally:
            if self._owned:
                self._fh.close()
