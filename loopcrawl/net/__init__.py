"""How requests go out: the fetcher (timeouts, caps, redirects), the
keep-alive pool on aiohttp's protocol, and robots.txt."""
