"""Where Goalpost keeps things: the project root, the client registry and local state.

The project root is the folder that holds `clients/` (found from the working directory upward,
or set with GOALPOST_HOME); local state (the embedded database, demo files, secrets) lives in
`<root>/.goalpost` unless GOALPOST_STATE_DIR says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
SQLMESH_DIR = REPO_DIR / "sqlmesh"


def project_root() -> Path:
    """The folder whose `clients/` is the registry in use."""
    env = os.environ.get("GOALPOST_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "clients").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return REPO_DIR


def clients_dir() -> Path:
    return project_root() / "clients"


def state_dir() -> Path:
    env = os.environ.get("GOALPOST_STATE_DIR")
    path = Path(env).expanduser().resolve() if env else project_root() / ".goalpost"
    path.mkdir(parents=True, exist_ok=True)
    return path
