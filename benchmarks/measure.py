"""Measuring a crawler (a subprocess) and checking what it did.

CPU and peak memory come from ``os.wait4`` on the crawler's own process: the
kernel's account of user + system time and maximum resident set size of that
process and of any children it waited for. The server runs in another process
tree and is never counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from servers import Hit


@dataclass(slots=True)
class Measured:
    """One crawler process, as the kernel saw it."""

    wall: float  # seconds, from spawn to exit (interpreter start-up included)
    user: float
    sys: float
    maxrss_kib: int  # peak RSS (VmHWM), summed over the crawler's processes
    returncode: int
    stderr_tail: str = ""
    timed_out: bool = False
    server_cpu: float = 0.0  # CPU-seconds the server used during the crawl
    others_cpu: float = 0.0  # CPU-seconds of everything else on the machine meanwhile

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(cmd: Sequence[str], *, timeout: float, log_path: str,
                 env: dict[str, str] | None = None, cwd: str | None = None) -> Measured:
    """Run ``cmd`` to the end (or kill it at ``timeout``) and measure it."""
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, start_new_session=True)
        deadline = t0 + timeout
        timed_out = False
        peaks: dict[int, int] = {}
        pids = [proc.pid]
        polls = 0
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if polls % 50 == 0:
                pids = process_tree(proc.pid)
            polls += 1
            for p in pids:
                hwm = vm_hwm_kib(p)
                if hwm > peaks.get(p, 0):
                    peaks[p] = hwm
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    with open(log_path, "rb") as fh:
        tail = fh.read()[-2000:].decode(errors="replace")
    return Measured(wall, ru.ru_utime, ru.ru_stime, sum(peaks.values()) or ru.ru_maxrss,
                    proc.returncode, tail, timed_out)


def vm_hwm_kib(pid: int | str) -> int:
    """Peak RSS of one process in KiB (VmHWM), 0 if it is gone.

    Not ``ru_maxrss`` from ``wait4``: Linux carries that across exec, so a
    crawler spawned by this (big) benchmark process would report our peak.
    """
    return field_of(f"/proc/{pid}/status", "VmHWM:")


def field_of(path: str, label: str) -> int:
    """The number after ``label`` on the first line that starts with it, 0 if
    there is none (or no file): /proc status lines, callgrind's summary."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(label):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc/PID/task/TID/children)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    out += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return out


@dataclass(slots=True)
class Check:
    """A crawl's output and server log against the site's ground truth."""

    expected: int
    found: int  # expected pages recorded with status 200
    missing: int
    extra: int  # 200 pages recorded that are not expected
    dupes_out: int  # output records for a page already recorded
    dupes_fetched: int  # requests for a URL the server had already answered
    forbidden: int  # requests robots.txt forbids
    offsite: int  # requests to another host (127.0.0.2)
    requests: int  # all requests the server logged for this crawl
    missing_sample: list[str] = field(default_factory=list)
    dupes_sample: list[str] = field(default_factory=list)  # paths the server answered twice

    @property
    def correct(self) -> bool:
        return not (self.missing or self.extra or self.dupes_out or self.dupes_fetched
                    or self.forbidden or self.offsite)


def read_found(path: str, url_field: str) -> list[str]:
    """The canonical URLs of the 200 records of a JSONL output file.

    Canonical (``loopcrawl.urls.canonicalize``) because a crawler may write a URL
    as it was linked (``/cat%30/...``): that is the same page, not a miss.
    """
    from loopcrawl.urls import canonicalize

    out: list[str] = []
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return out
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if rec.get("status") == 200 and rec.get(url_field):
                out.append(canonicalize(rec[url_field]) or rec[url_field])
    return out


def check(expected: Iterable[str], found: list[str], hits: list[Hit], base_url: str,
          forbidden_path: Any) -> Check:
    """Compare; ``forbidden_path(path) -> bool`` is the site's robots.txt truth."""
    from loopcrawl.urls import canonicalize

    exp = set(expected)
    got = set(found)
    host = base_url.split("//", 1)[1]
    fetched: Counter[str] = Counter()
    forbidden = offsite = 0
    for h in hits:
        if h.host != host:
            offsite += 1
            continue
        canon = canonicalize("http://" + host + h.target)
        path = canon.split(host, 1)[1] if canon else h.target
        if forbidden_path(path.split("?", 1)[0]):
            forbidden += 1
        if path != "/robots.txt":
            fetched[path] += 1
    missing = sorted(exp - got)
    return Check(
        expected=len(exp),
        found=len(exp & got),
        missing=len(missing),
        extra=len(got - exp),
        dupes_out=len(found) - len(got),
        dupes_fetched=sum(n - 1 for n in fetched.values() if n > 1),
        forbidden=forbidden,
        offsite=offsite,
        requests=len(hits),
        missing_sample=missing[:5],
        dupes_sample=[p for p, n in fetched.items() if n > 1][:5],
    )


def cpu_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.15, say: Any = None,
               sample: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than
    ``threshold`` of one core for two ``sample``-second spans in a row; return
    the last share seen.

    The machine may be shared (other builds, other benchmarks): a crawler that
    has to share its core reports a wall time that is not its own.
    """
    deadline = time.monotonic() + max_wait
    quiet = 0
    share = 0.0
    warned = False
    while True:
        b0, t0 = cpu_busy_seconds(), time.monotonic()
        time.sleep(sample)
        share = (cpu_busy_seconds() - b0) / (time.monotonic() - t0)
        quiet = quiet + 1 if share < threshold else 0
        if quiet >= 2 or time.monotonic() > deadline:
            return share
        if not warned and say is not None and share >= threshold:
            say(f"      (machine busy: {share:.0%} of a core used by other processes; waiting "
                f"up to {max_wait:g} s for quiet)")
            warned = True


def server_span(hits: list[Hit]) -> float:
    """Seconds from the first request's arrival to the last response (server clock)."""
    if not hits:
        return 0.0
    return max(h.end for h in hits) - min(h.start for h in hits)


def wrk_rate(url_paths: list[str], base_url: str, seconds: float = 3.0,
             connections: int = 64) -> tuple[float, str] | None:
    """Requests/s the server sustains under wrk (one thread), cycling through
    ``url_paths``; None when wrk is not installed."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    import tempfile

    paths = ",".join(f'"{p}"' for p in url_paths)
    script = (f"local paths = {{{paths}}}\nlocal i = 0\n"
              "request = function()\n  i = i % #paths + 1\n"
              "  return wrk.format('GET', paths[i])\nend\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        p = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", fh.name,
                            base_url + "/"], capture_output=True, text=True,
                           timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return None
    finally:
        os.unlink(fh.name)
    for line in p.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1]), f"wrk -t1 -c{connections} -d{seconds:g}s"
    return None


def aiohttp_rate(urls: list[str], seconds: float = 3.0, connections: int = 64) -> float:
    """Requests/s the server answers to an aiohttp load loop (a lower bound:
    the client's own CPU shares this machine with the server)."""
    import asyncio

    import aiohttp

    async def go() -> float:
        done = 0
        stop_at = time.perf_counter() + seconds
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections)) as s:
            async def worker(offset: int) -> None:
                nonlocal done
                i = offset
                while time.perf_counter() < stop_at:
                    async with s.get(urls[i % len(urls)]) as r:
                        await r.read()
                    done += 1
                    i += connections
            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(connections))),
                                   seconds + 30)
            return done / (time.perf_counter() - t0)

    return asyncio.run(go())
