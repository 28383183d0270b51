"""``python -m loopcrawl.testsite``: serve the test site, print its ground truth, or
write it as static files. What :class:`ServerProcess` starts."""

from __future__ import annotations

import argparse
import sys

from .server import run
from .site import Site


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and do one thing; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m loopcrawl.testsite",
                                 description="Serve loopcrawl's synthetic test site.")
    ap.add_argument("--pages", type=int, default=1000, help="item pages (default 1000)")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="delay every response this long")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--print-port", action="store_true",
                    help="print only the bound port (one line) instead of the banner")
    ap.add_argument("--quiet", action="store_true", help="print nothing once listening")
    ap.add_argument("--expected", action="store_true",
                    help="print the URLs a correct crawl finds, sorted, and exit")
    ap.add_argument("--scope", choices=("host", "any"), default="host",
                    help="with --expected: 'any' adds the pages on 127.0.0.2")
    ap.add_argument("--hostile", action="store_true",
                    help="also serve the hostile corner under /hostile/")
    ap.add_argument("--write", metavar="DIR",
                    help="write the site as static files under DIR and exit")
    args = ap.parse_args(argv)
    if args.pages < 1:
        ap.error("--pages must be at least 1")
    base = f"http://{args.host}:{args.port}"
    if args.expected:
        site = Site(args.pages, args.seed)
        sys.stdout.write("".join(u + "\n" for u in sorted(site.expected(base, scope=args.scope))))
        return 0
    if args.write:
        n = Site(args.pages, args.seed).write_files(args.write, base)
        print(f"wrote {n} files under {args.write} (links point at {base})")
        return 0
    try:
        run(pages=args.pages, port=args.port, latency_ms=args.latency_ms, seed=args.seed,
            host=args.host, quiet=args.quiet, print_port=args.print_port,
            hostile=args.hostile)
    except OSError as e:
        print(f"loopcrawl.testsite: cannot serve on {args.host}:{args.port}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
