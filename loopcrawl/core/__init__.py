"""The crawl on one event loop: the engine, its scheduler (per-host
politeness), trap defences and statistics."""
