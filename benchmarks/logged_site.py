"""The test site in a process of its own that writes its request log at exit.

``python -m loopcrawl.testsite`` keeps no log (it serves for as long as anyone
wants); the benchmark needs to know what each crawler fetched, seen from the
server. So this serves the same ``TestSiteServer`` with logging on, prints the
port, and on SIGINT/SIGTERM (or after ``--max-seconds``) writes one line per
request: start, end, host, method, target, status (tab-separated).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from loopcrawl.testsite import Site, TestSiteServer


async def serve(args: argparse.Namespace) -> None:
    server = TestSiteServer(Site(args.pages, args.seed), host="127.0.0.1", port=args.port,
                            latency_ms=args.latency_ms, log=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(server.port, flush=True)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.max_seconds)
    finally:
        await server.stop()
        with open(args.log, "w", encoding="utf-8") as fh:
            fh.writelines(f"{e.start:.6f}\t{e.end:.6f}\t{e.host}\t{e.method}\t{e.raw_path}\t"
                          f"{e.status}\n" for e in server.log)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True, help="write the request log here at exit")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
    args = ap.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))


if __name__ == "__main__":
    main()
