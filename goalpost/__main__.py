"""`python -m goalpost`: the same as the `goalpost` command."""

from goalpost.cli import main

main()
