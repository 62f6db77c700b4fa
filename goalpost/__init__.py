"""Goalpost: a data stack in a box."""

import os as _os

# SQLMesh forks a pool of processes to load projects. Goalpost's per-client projects are small,
# and forked workers inherit every open socket: a run's advisory lock and database sessions
# would outlive a killed process in them. One process, no fork.
_os.environ.setdefault("MAX_FORK_WORKERS", "1")
