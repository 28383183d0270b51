"""The built-in synthetic web site: ground truth for tests, the demo and benchmarks.

Independent of the rest of loopcrawl on purpose (stdlib and aiohttp only), so a
bug in the crawler cannot also hide in the yardstick it is measured with.
"""

from .server import LogEntry, ServerProcess, ServerThread, TestSiteServer, run
from .shop import Shop
from .site import Site

__all__ = ["LogEntry", "ServerProcess", "ServerThread", "Shop", "Site", "TestSiteServer", "run"]
