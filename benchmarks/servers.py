"""The servers the benchmark crawls: the Python test site and nginx.

Each is started fresh for each crawl, in a process of its own (its CPU is never
the crawler's), and hands back its request log when stopped, so that what a
crawler fetched is checked at the server, not only in the crawler's output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 60.0  # building a 20,000-page site's link model takes a few seconds
STOP_TIMEOUT = 15.0


@dataclass(slots=True)
class Hit:
    """One request as the server saw it."""

    host: str  # the Host header (host:port)
    target: str  # the raw request target (path?query)
    status: int
    start: float  # seconds, server clock (only differences are used)
    end: float


def free_port() -> int:
    """A port that was free a moment ago (the tiny race is acceptable here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout:g} s")


def tree_cpu_seconds(pid: int) -> float:
    """user + sys CPU-seconds of a process and its children (psutil; 0 without it)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask politely, wait a bounded time, then kill."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


class PythonSite:
    """The test site (``TestSiteServer``) in a subprocess, with its request log
    (``logged_site.py``)."""

    name = "Python test site"
    static = False

    def __init__(self, pages: int, seed: int = 0, latency_ms: float = 0.0) -> None:
        self.pages, self.seed, self.latency_ms = pages, seed, latency_ms
        self.port = 0
        self._dir = tempfile.mkdtemp(prefix="lc-bench-site-")
        self._log = os.path.join(self._dir, "requests.log")
        self._proc: subprocess.Popen[bytes] | None = None
        self.hits: list[Hit] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PythonSite:
        cmd = [sys.executable, str(Path(__file__).with_name("logged_site.py")),
               "--pages", str(self.pages), "--seed", str(self.seed),
               "--latency-ms", str(self.latency_ms), "--port", "0", "--log", self._log]
        self._err = os.path.join(self._dir, "stderr.txt")
        with open(self._err, "wb") as err:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                          start_new_session=True)
        assert self._proc.stdout is not None
        line = _readline(self._proc, STARTUP_TIMEOUT)
        m = re.search(rb"(\d+)\s*$", line)
        if not m:
            stop_process(self._proc)
            with open(self._err, "rb") as fh:
                err = fh.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"test site printed no port: {line!r} {err}")
        self.port = int(m.group(1))
        wait_for_port(self.port, self._proc, STARTUP_TIMEOUT)
        return self

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (its whole process tree)."""
        return tree_cpu_seconds(self._proc.pid) if self._proc is not None else 0.0

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT)
        self.hits = read_python_log(self._log)
        shutil.rmtree(self._dir, ignore_errors=True)


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """One line of the child's stdout, bounded in time (select on the pipe)."""
    import select

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def read_python_log(path: str) -> list[Hit]:
    """The log ``logged_site.py`` writes: one request a line, tab-separated:
    start end host method target status."""
    hits: list[Hit] = []
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except FileNotFoundError:
        return hits
    with fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 6:
                continue
            start, end, host, _method, target, status = parts
            hits.append(Hit(host, target, int(status), float(start), float(end)))
    return hits


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; text/plain txt; application/xml xml; }}
    default_type application/octet-stream;
    log_format bench '$msec\\t$request_time\\t$http_host\\t$request_uri\\t$status';
    access_log {dir}/access.log bench buffer=256k flush=1s;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.2:{port};
        root {root};
        index index.html;
        charset utf-8;
        charset_types text/html text/plain;
    }}
}}
"""


def nginx_version() -> str | None:
    """nginx's version, or None when it is not installed."""
    exe = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if exe is None:
        return None
    try:
        p = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"nginx/(\S+)", p.stderr + p.stdout)
    return m.group(1) if m else "unknown"


class StaticFiles:
    """The test site written once as static files (``--write``), for nginx."""

    def __init__(self, pages: int, seed: int, port: int) -> None:
        self.pages, self.seed, self.port = pages, seed, port
        self.dir = tempfile.mkdtemp(prefix="lc-bench-static-")
        os.chmod(self.dir, 0o755)  # nginx's workers may run as another user
        self.root = os.path.join(self.dir, "site")

    def write(self) -> int:
        from loopcrawl.testsite import Site

        n = Site(self.pages, self.seed).write_files(self.root, f"http://127.0.0.1:{self.port}")
        for d, _, _ in os.walk(self.dir):
            os.chmod(d, 0o755)
        return n

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx:
    """nginx (one worker) serving a ``StaticFiles`` tree, with its access log."""

    name = "nginx"
    static = True

    def __init__(self, files: StaticFiles) -> None:
        self.files = files
        self.port = files.port
        self._dir = tempfile.mkdtemp(prefix="lc-bench-nginx-")
        os.makedirs(os.path.join(self._dir, "tmp"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.hits: list[Hit] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = os.path.join(self._dir, "nginx.conf")
        with open(conf, "w") as fh:
            fh.write(NGINX_CONF.format(dir=self._dir, port=self.port, root=self.files.root))
        self._proc = subprocess.Popen(
            [exe, "-p", self._dir, "-c", conf, "-e", os.path.join(self._dir, "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_port(self.port, self._proc, 15)
        except RuntimeError as e:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            stop_process(self._proc)
            raise RuntimeError(f"{e}: {err.strip()[-300:]}") from None
        return self

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (its whole process tree)."""
        return tree_cpu_seconds(self._proc.pid) if self._proc is not None else 0.0

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGQUIT)  # graceful: flushes the access log
            if self._proc.stderr is not None:
                self._proc.stderr.close()
        self.hits = []
        try:
            fh = open(os.path.join(self._dir, "access.log"), encoding="utf-8",  # noqa: SIM115
                      errors="replace")
        except FileNotFoundError:
            fh = None
        if fh is not None:
            with fh:
                for line in fh:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) == 5:
                        end, took, host, target, status = parts
                        self.hits.append(Hit(host, target, int(status),
                                             float(end) - float(took), float(end)))
        shutil.rmtree(self._dir, ignore_errors=True)
