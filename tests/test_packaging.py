"""The built wheel holds everything Goalpost runs on: every module, the SQLMesh project, the
manifests, templates and migrations; and what the scheduler imports (the image's command) is
in the wheel or in a runtime dependency. The image installs that wheel, nothing else.

The wheel installed into a clean virtual environment and run from an empty folder (the demo
and a report) is .ci/wheel-check, which .ci/run runs."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from test_layers import imports_of, modules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would reuse build/lib
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--disable-pip-version-check", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("goalpost-*.whl")
    return zipfile.ZipFile(path)


def wheel_modules(wheel: zipfile.ZipFile) -> set[str]:
    names = set()
    for name in wheel.namelist():
        if name.endswith(".py") and name.startswith("goalpost/"):
            parts = name[:-3].split("/")
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_wheel_has_every_module_and_data_file(wheel: zipfile.ZipFile) -> None:
    assert set(modules()) <= wheel_modules(wheel)
    files = set(wheel.namelist())
    project = ROOT / "sqlmesh"
    shipped = {f"goalpost/transform/project/{p.relative_to(project)}" for p in project.rglob("*")
               if p.is_file() and p.suffix in (".sql", ".py") and "__pycache__" not in p.parts}
    assert shipped and shipped <= files, sorted(shipped - files)[:5]
    for folder, pattern, inside in (
            ("pipelines/connectors/manifests", "*.yaml", "goalpost/pipelines/connectors/manifests"),
            ("metabase/templates", "*.yaml", "goalpost/metabase/templates"),
            ("goalpost/core/migrations", "*.sql", "goalpost/core/migrations"),
            ("sandbox/demo", "*.yaml", "goalpost/sandbox/demo")):
        expected = {f"{inside}/{p.name}" for p in (ROOT / folder).glob(pattern)}
        assert expected and expected <= files, (folder, sorted(expected - files))
    assert "goalpost/sandbox/metabase_standin/openapi.json.gz" in files
    catalogs = {f"goalpost/alerts/locales/{p.relative_to(ROOT / 'goalpost/alerts/locales')}"
                for p in (ROOT / "goalpost/alerts/locales").rglob("*.po*")}
    assert len(catalogs) >= 5 and catalogs <= files, sorted(catalogs - files)
    assert not [n for n in files if n.split("/")[0] in ("metabase", "pipelines", "extensions",
                                                       "backup", "sandbox")], \
        "the wheel installs a top-level package besides goalpost"
    entry_points = next(n for n in files if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "goalpost = goalpost.app.cli:main" in text and "[goalpost.vocabulary]" in text


def _runtime_distributions() -> set[str]:
    """The distributions a plain `pip install goalpost` brings, dev extras left out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen or (requirement.marker and not requirement.marker.evaluate(
                {"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(requirement.name) or ()]
        except metadata.PackageNotFoundError:
            continue
    return seen


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _closure(start: list[str]) -> tuple[set[str], set[str]]:
    """Goalpost modules reachable from `start` through any import (inside functions too),
    and the top-level third-party modules they import."""
    known = modules()
    ours, theirs, todo = set(), set(), list(start)
    while todo:
        module = todo.pop()
        if module in ours or module not in known:
            continue
        ours.add(module)
        for imp in imports_of(module, known[module]):
            todo.append(imp.target)
        theirs |= _top_level_imports(known[module]) - {"goalpost", "__future__"}
    return ours, theirs - set(sys.stdlib_module_names)


def test_what_the_scheduler_imports_is_installed_with_the_wheel(wheel: zipfile.ZipFile) -> None:
    ours, theirs = _closure(["goalpost.app.scheduler", "goalpost.app.cli"])
    production = {m for m in ours if not m.startswith("goalpost.sandbox")}
    assert {"goalpost.app.orchestrator", "goalpost.transform.build",
            "goalpost.extensions.runner", "goalpost.alerts.check"} <= production
    assert production <= wheel_modules(wheel)
    runtime = _runtime_distributions()
    by_module = metadata.packages_distributions()
    missing = {module: by_module.get(module) for module in theirs
               if not {re.sub(r"[-_.]+", "-", d).lower() for d in by_module.get(module, ())}
               & runtime}
    assert missing == {}, "imported by production code but not a runtime dependency"


def test_the_image_installs_the_wheel_and_copies_no_source() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 2, "a stage that builds the wheel, one that installs it"
    build, image = stages
    assert "build --wheel" in build
    copies = re.findall(r"^COPY (.+)$", image, re.M)
    assert all(c.startswith(("--from=wheel ", "constraints.txt ")) for c in copies), copies
    assert re.search(r"pip install .*-c /tmp/constraints.txt /tmp/dist/goalpost-\*\.whl", image)
    assert 'CMD ["goalpost", "scheduler"]' in image
