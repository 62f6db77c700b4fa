"""docker-compose.yml against the Compose specification, and its cross-references: services,
volumes, files, environment variables, the image's contents and the commands it runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


def test_conforms_to_the_compose_specification():
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).parent /
                                                       "check-jsonschema")
    done = subprocess.run([checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_services_and_volumes_refer_to_each_other(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "metabase", "scheduler"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
    used = {m.split(":")[0] for s in services.values() for m in s.get("volumes", [])}
    assert set(compose["volumes"]) <= used, "declared volumes nobody mounts"
    assert services["metabase"]["environment"]["MB_DB_HOST"] == "postgres"
    assert "postgres" in services["scheduler"]["environment"]["GOALPOST_DATABASE_URL"]


def test_every_variable_is_documented_in_the_env_example(compose):
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    for service in compose["services"].values():
        for entry in service.get("env_file", []):
            assert entry["path"] == ".env" and (ROOT / ".gitignore").read_text().count(".env")


def test_the_image_has_what_the_scheduler_service_runs(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", dockerfile, re.M):
        for item in source.split():
            if not item.startswith(("--", "/")):  # a stage's output, not the repository's
                assert (ROOT / item).exists(), f"Dockerfile copies missing {item}"
    command = compose["services"]["scheduler"]["command"]
    assert command[0] == "goalpost"
    from click.testing import CliRunner

    from goalpost.app.cli import cli

    shown = CliRunner().invoke(cli, [*command[1:], "--help"])
    assert shown.exit_code == 0, shown.output
    init = ROOT / "metabase" / "postgres-init.sh"
    assert init.stat().st_mode & 0o111 and "CREATE DATABASE metabase" in init.read_text()
