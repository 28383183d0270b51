"""``python -m loopcrawl`` is the ``loopcrawl`` command."""

from loopcrawl.cli import main

main()
