"""The transform stage: one client's SQLMesh models built in its own SQLMesh context
(build), over the SQLMesh project shipped in this package: `project/`, which in the
repository is the top-level sqlmesh/ folder (a link), and in an installed wheel a copy."""

import hashlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from goalpost.core.paths import state_dir

PROJECT_DIR = Path(str(resources.files(__name__) / "project"))


def _skipped(relative: Path) -> bool:
    return "__pycache__" in relative.parts or relative.parts[0] in ("logs", ".cache")


def loadable_project_dir() -> Path:
    """The folder SQLMesh loads the project from: the shipped one, or a copy of it outside
    site-packages.

    SQLMesh treats every Python file under a `site-packages` path as a third-party library
    (sqlmesh.utils.metaprogramming): the project's macros are then not serialised with the
    variables they read, every blueprint renders empty and no model loads. An installed wheel
    therefore builds from a copy in the state folder, one per content of the shipped project
    (an upgrade gets a new copy; a rerun reuses it); the copy is made in a temporary folder
    and renamed into place, so two processes never see half of one."""
    if "site-packages" not in PROJECT_DIR.resolve().parts:
        return PROJECT_DIR
    files = sorted(p for p in PROJECT_DIR.rglob("*")
                   if p.is_file() and not _skipped(p.relative_to(PROJECT_DIR)))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    root = state_dir() / "sqlmesh-project"
    target = root / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
    try:
        shutil.copytree(PROJECT_DIR, scratch / "project",
                        ignore=shutil.ignore_patterns("__pycache__", "logs", ".cache"))
        try:
            os.rename(scratch / "project", target)
        except OSError:
            if not target.is_dir():  # not another process's copy landing first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
