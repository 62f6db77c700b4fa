"""`python -m goalpost`: the same as the `goalpost` command."""

from goalpost.app.cli import main

main()
