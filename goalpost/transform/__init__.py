"""The transform stage: one client's SQLMesh models built in its own SQLMesh context
(build), over the SQLMesh project shipped in this package: `project/`, which in the
repository is the top-level sqlmesh/ folder (a link), and in an installed wheel a copy."""

from importlib import resources
from pathlib import Path

PROJECT_DIR = Path(str(resources.files(__name__) / "project"))
