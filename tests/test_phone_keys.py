"""One person per phone number, however it is written: national and international forms of the
same number give one customer_key (staging.phone_numbers reads them with phonenumbers, in the
client's country)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import psycopg
import pytest
from csv_files import write_csv

from goalpost.app.orchestrator import run_client
from goalpost.core.paths import project_root
from goalpost.transform import PROJECT_DIR


def _model_module():  # noqa: ANN202 - the Python model's module
    """The Python model's file, loaded under a name of its own (SQLMesh loads it again by
    path for every context)."""
    path = PROJECT_DIR / "models" / "staging" / "phone_numbers.py"
    spec = importlib.util.spec_from_file_location("phone_numbers_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


international = _model_module().international

# (country, the national form, the same number written internationally, another number)
PAIRS = [
    ("IT", "06 1234 5678", "+39 06 1234 5678", "+39 347 123 4567"),
    ("FR", "06 12 34 56 78", "+33 6 12 34 56 78", "01 42 68 53 00"),
    ("GB", "020 7946 0958", "+44 20 7946 0958", "07700 900123"),
    ("US", "(415) 555-0132", "+1 415-555-0132", "212 555 0199"),
]


@pytest.mark.parametrize(("country", "local", "written", "other"), PAIRS)
def test_both_forms_read_as_one_number(country: str, local: str, written: str,
                                       other: str) -> None:
    assert international(local, country) == international(written, country) is not None
    assert international(other, country) not in (None, international(local, country))


def test_a_text_that_is_no_phone_number_has_no_key() -> None:
    assert international("n/a", "FR") is None
    assert international("12", "FR") is None


@pytest.mark.e2e
@pytest.mark.parametrize(("country", "local", "written", "other"), PAIRS)
def test_local_and_international_forms_are_one_person(
        project: Path, conn: psycopg.Connection, country: str, local: str, written: str,
        other: str) -> None:
    slug = f"phones_{country.lower()}"
    write_csv(project_root() / "exports" / "customers.csv", [
        {"id": "1", "phone": local, "email": ""},
        {"id": "2", "phone": written, "email": ""},
        {"id": "3", "phone": other, "email": ""},
    ])
    (project / "clients" / f"{slug}.yaml").write_text(f"""\
name: Phones {country}
country: {country}
extensions: []
sources:
  - name: crm
    connector: files
    streams:
      - name: customers
        path: exports/customers.csv
        entity: customers
        primary_key: [id]
        columns: {{customer_id: id}}
""", encoding="utf-8")
    result = run_client(slug)
    assert result.status == "succeeded", [(s.name, s.error) for s in result.steps if s.error]
    keys = dict(conn.execute(
        f"SELECT customer_id, customer_key FROM {slug}_staging.customer_keys").fetchall())
    assert keys["1"] == keys["2"] != keys["3"]
