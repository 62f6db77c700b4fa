"""A source added then removed leaves the client's models building from what is there now:
new sales after the removal reach order_lines and the marts (issue 23, case 10)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

HEADER = "ticket;date;shop;sku;qty;total\n"


def sales(day: int, tickets: range) -> str:
    return HEADER + "".join(f"T{day}-{t};{day:02d}/03/2024 08:00;S1;P1;1;1,20\n"
                            for t in tickets)


def add_sales(run_cli, source: str, path: str):
    return run_cli("source", "add", "shop", source, "--stream", "sales",
                   "--entity", "order_lines", "--path", path, "--primary-key", "ticket,sku",
                   "--map", "order_id=ticket", "--map", "ordered_at=date",
                   "--map", "location_id=shop", "--map", "product_id=sku",
                   "--map", "quantity=qty", "--map", "line_total=total", "--yes")


def counts(conn) -> tuple[int, int, int, int]:
    return conn.execute(
        """SELECT (SELECT count(*) FROM shop_raw.pos__sales),
                  (SELECT count(*) FROM shop_staging.stg_files__order_lines),
                  (SELECT count(*) FROM shop_staging.order_lines),
                  (SELECT sum(orders)::int FROM shop_marts.daily_sales)""").fetchone()


@pytest.fixture
def shop(run_cli, project, conn) -> None:
    """Client `shop` with one file source `pos`, run once: three lines everywhere."""
    assert run_cli("client", "add", "shop", "--name", "Shop", "--yes").exit_code == 0
    (project / "exports").mkdir()
    (project / "exports" / "sales_01.csv").write_text(sales(1, range(3)))
    assert add_sales(run_cli, "pos", "exports/sales_*.csv").exit_code == 0
    assert run_cli("run", "shop").exit_code == 0
    assert counts(conn) == (3, 3, 3, 3)


def assert_all_lines_reach_the_marts(run_cli, conn) -> None:
    """The seven lines of pos (3 + 4) in raw, staging and the marts, also after a rebuild."""
    assert counts(conn) == (7, 7, 7, 7)
    assert run_cli("run", "shop", "--full-refresh").exit_code == 0
    assert counts(conn) == (7, 7, 7, 7)


def test_new_sales_after_a_source_is_added_and_removed_reach_the_marts(shop, run_cli, project,
                                                                        conn) -> None:
    exports = project / "exports"

    (exports / "web_01.csv").write_text(sales(2, range(100, 102)))
    added = add_sales(run_cli, "web", "exports/web_*.csv")
    assert added.exit_code == 0, added.output
    assert run_cli("run", "shop").exit_code == 0
    assert conn.execute("SELECT count(*) FROM shop_staging.order_lines").fetchone() == (5,)

    removed = run_cli("source", "remove", "shop", "web", "--drop-data", "--yes")
    assert removed.exit_code == 0, removed.output
    (exports / "sales_03.csv").write_text(sales(3, range(4)))
    ran = run_cli("run", "shop")
    assert ran.exit_code == 0, ran.output
    assert_all_lines_reach_the_marts(run_cli, conn)


@pytest.mark.parametrize("drop", [["--drop-data"], []], ids=["drop-data", "keep-data"])
def test_new_sales_after_an_api_source_is_added_and_removed_reach_the_marts(
        shop, run_cli, project, conn, monkeypatch: pytest.MonkeyPatch, drop: list[str]) -> None:
    """A second connector changes the union models (order_lines reads files and Square);
    removing it brings back their earlier version, which must not come back with its
    earlier rows. Dropping its data also drops the staging views SQLMesh built on it (once a
    traceback: DependentObjectsStillExist, with the source already gone from the YAML)."""
    import golden_data
    from ruamel.yaml import YAML

    from goalpost.sandbox.emulators.square import SquareEmulator

    exports = project / "exports"

    monkeypatch.setenv("SHOP_SQUARE_TOKEN", "sq-token")
    with SquareEmulator(golden_data.golden_data(), token="sq-token",
                        now=golden_data.NOW) as square:
        path = project / "clients" / "shop.yaml"
        yaml = YAML()
        document = yaml.load(path)
        document["sources"].append({"name": "till", "connector": "square", "config": {
            "base_url": square.url, "access_token": "env:SHOP_SQUARE_TOKEN",
            "start_date": golden_data.START_DATE}})
        yaml.dump(document, path)
        ran = run_cli("run", "shop")
        assert ran.exit_code == 0, ran.output
    with_square = conn.execute("SELECT count(*) FROM shop_staging.order_lines").fetchone()[0]
    assert with_square > 3

    removed = run_cli("source", "remove", "shop", "till", *drop, "--yes")
    assert removed.exit_code == 0, removed.output
    (exports / "sales_03.csv").write_text(sales(3, range(4)))
    ran = run_cli("run", "shop")
    assert ran.exit_code == 0, ran.output
    assert_all_lines_reach_the_marts(run_cli, conn)
