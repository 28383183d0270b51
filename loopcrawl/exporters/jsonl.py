"""JSON Lines output: one record per line, written in batches."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import orjson

from ..errors import ConfigError


class JsonlWriter:
    """Appends records as JSON lines; ``path`` "-" is standard output.

    Lines are buffered and written in batches of ``batch`` records (one
    ``write`` syscall each), and always flushed on ``close()``.
    """

    def __init__(self, path: str, *, batch: int = 256, append: bool = False) -> None:
        self.path = path
        self._batch = batch
        self._buf: list[bytes] = []
        self.count = 0
        if path == "-":
            self._fh: IO[bytes] = sys.stdout.buffer
            self._owned = False
        else:
            try:
                self._fh = open(path, "ab" if append else "wb")  # noqa: SIM115
            except OSError as e:
                raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
            self._owned = True

    def write(self, record: dict[str, Any]) -> None:
        self._buf.append(orjson.dumps(record))
        self.count += 1
        if len(self._buf) >= self._batch:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._buf.append(b"")
            self._fh.write(b"\n".join(self._buf))
            self._buf.clear()
        self._fh.flush()

    def close(self) -> None:
        try:
            self.flush()
            if self._owned:
                os.fsync(self._fh.fileno())
        finally:
            if self._owned:
                self._fh.close()
