"""The import contract of ARCHITECTURE.md, checked on every module the distribution installs:
core at the bottom, stages side by side, the application on top, the sandbox beside it."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("pipelines", "transform", "extensions", "alerts", "metabase", "backup")
# The only modules that may reach the sandbox, and only from inside a function (a command).
SANDBOX_GATES = {"goalpost.app.cli"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module
    path: Path
    line: int
    top_level: bool  # at import time (not inside a function)


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in config["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module the wheel installs (the SQLMesh project's Python is the transform's)."""
    found: dict[str, Path] = {}
    mapped = package_dirs()
    for package, folder in mapped.items():
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder)
            if any(part in ("project",) or part.startswith(".") for part in relative.parts):
                continue
            inner = [f"{package}.{name}" for name in mapped if name.startswith(package + ".")]
            parts = [p for p in relative.with_suffix("").parts if p != "__init__"]
            name = ".".join([package, *parts])
            if any(name == other or name.startswith(other + ".") for other in inner):
                continue  # a folder mapped to a package of its own
            found[name] = path
    for path in (ROOT / "sqlmesh").rglob("*.py"):
        parts = path.relative_to(ROOT / "sqlmesh").with_suffix("").parts
        found[".".join(("goalpost.transform.project", *parts))] = path
    return found


def imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    functions = {id(n) for f in ast.walk(tree)
                 if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target == "goalpost" or target.startswith("goalpost."):
                out.append(Import(module, target, path, node.lineno, id(node) not in functions))
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "entry"
    if parts[1] in STAGES:
        return f"stage {parts[1]}"
    return parts[1]  # core, app, sandbox


def violation(imp: Import, known: set[str]) -> str | None:
    if imp.target not in known and not any(m.startswith(imp.target + ".") for m in known):
        return None  # a name imported from a module (`from x import name`), not a module
    source, target = layer(imp.module), layer(imp.target)
    if target == "entry":
        return None if source == "entry" else "imports the package root"
    if source == "core" and target != "core":
        return f"the core imports {target}"
    if source.startswith("stage") and target != "core" and target != source:
        return f"{source} imports {target}"
    if source == "app" and target == "sandbox" and (
            imp.module not in SANDBOX_GATES or imp.top_level):
        return "the application reaches the sandbox outside a CLI command"
    return None


def contract_violations(found: dict[str, Path] | None = None) -> list[str]:
    found = found if found is not None else modules()
    known = set(found)
    problems = []
    for module, path in sorted(found.items()):
        for imp in imports_of(module, path):
            why = violation(imp, known)
            if why:
                problems.append(f"{path.relative_to(ROOT)}:{imp.line}: {module} -> "
                                f"{imp.target}: {why}")
    return problems


def test_every_module_keeps_to_its_layer() -> None:
    assert contract_violations() == []


@pytest.mark.parametrize(("module", "source", "why"), [
    ("goalpost.core.registry.models", "from goalpost.metabase.template import TEMPLATES_DIR\n",
     "the core imports stage metabase"),
    ("goalpost.metabase.alerts", "from goalpost.alerts.check import evaluate_alerts\n",
     "stage metabase imports stage alerts"),
    ("goalpost.pipelines.files.probe", "from goalpost.app.sources import test_streams\n",
     "stage pipelines imports app"),
    ("goalpost.app.orchestrator", "from goalpost.sandbox.demo.apis import demo_apis\n",
     "the application reaches the sandbox outside a CLI command"),
    ("goalpost.app.cli", "from goalpost.sandbox.demo.run import run_demo\n",
     "the application reaches the sandbox outside a CLI command"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, source: str, why: str) -> None:
    found = modules()
    path = tmp_path / "module.py"
    path.write_text(source, encoding="utf-8")
    found[module] = path
    problems = [p for p in contract_violations_at(found, tmp_path) if why in p]
    assert problems, f"{module}: {source!r} was not caught"


def contract_violations_at(found: dict[str, Path], folder: Path) -> list[str]:
    known = set(found)
    return [why for module, path in found.items() if path.parent == folder
            for imp in imports_of(module, path) if (why := violation(imp, known))]


def test_the_wheel_lists_every_package() -> None:
    """setuptools installs only the packages pyproject.toml names: a folder with an
    __init__.py that is not listed would be missing from a built wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    packages = {name for name, path in modules().items() if path.name == "__init__.py"}
    assert packages - listed == set(), "add them to [tool.setuptools] packages"
    assert listed - packages == set(), "listed packages without an __init__.py"
