"""Where Goalpost keeps things: the project home, the client registry and local state.

The project home is the folder that holds `clients/`: GOALPOST_HOME, else the nearest folder
from the working directory upward that has one, else the working directory itself (a new
home: `goalpost client add` creates `clients/` there). Local state (the embedded database,
demo files, secrets) lives in `<home>/.goalpost` unless GOALPOST_STATE_DIR says otherwise.
What ships with Goalpost (the SQLMesh project, manifests, templates) is found through
importlib.resources by the stage that owns it, never relative to the home.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder whose `clients/` is the registry in use."""
    env = os.environ.get("GOALPOST_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "clients").is_dir():
            return folder
    return here


def clients_dir() -> Path:
    return project_root() / "clients"


def state_dir() -> Path:
    env = os.environ.get("GOALPOST_STATE_DIR")
    path = Path(env).expanduser().resolve() if env else project_root() / ".goalpost"
    path.mkdir(parents=True, exist_ok=True)
    return path
