"""`goalpost source ...` and `goalpost run` with file sources, through the CLI."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

SHOPS = "id,label,town\nS1,Centre,Lyon\nS2,Gare,Lyon\n"
SALES = ("ticket;date;shop;sku;qty;total\n"
         "T1;02/03/2024 08:00;S1;P1;2;2,40\n"
         "T2;13/03/2024 09:00;S2;P1;1;1,20\n")


@pytest.fixture
def shop(run_cli, project):
    assert run_cli("client", "add", "shop", "--name", "Shop", "--yes").exit_code == 0
    (project / "exports").mkdir()
    (project / "exports" / "shops.csv").write_text(SHOPS)
    (project / "exports" / "sales_2024-03.csv").write_text(SALES)
    return project


def add_sales(run_cli, *extra: str):
    return run_cli("source", "add", "shop", "pos", "--stream", "sales", "--entity", "order_lines",
                   "--path", "exports/sales_*.csv", "--primary-key", "ticket,sku",
                   "--map", "order_id=ticket", "--map", "ordered_at=date",
                   "--map", "location_id=shop", "--map", "product_id=sku",
                   "--map", "quantity=qty", "--map", "line_total=total", "--yes", *extra)


@pytest.mark.e2e
def test_add_test_list_run_remove(run_cli, shop, conn):
    added = run_cli("source", "add", "shop", "pos", "--stream", "shops", "--entity", "locations",
                    "--path", "exports/shops.csv", "--primary-key", "id",
                    "--map", "location_id=id", "--map", "name=label", "--yes")
    assert added.exit_code == 0, added.output
    assert "delimiter ','" in added.output
    result = add_sales(run_cli)
    assert result.exit_code == 0, result.output
    assert "delimiter ';'" in result.output and "dates ordered_at %d/%m/%Y %H:%M" in result.output
    assert "already in" in add_sales(run_cli).output
    text = (shop / "clients" / "shop.yaml").read_text()
    assert "sales_*.csv" in text and "order_id: ticket" in text

    tested = run_cli("source", "test", "shop")
    assert tested.exit_code == 0, tested.output
    assert "ok   pos.sales: 1 file(s), 2 rows read, 0 rejected" in tested.output

    ran = run_cli("run", "shop", "--json")
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    assert summary["status"] == "succeeded" and summary["rows_loaded"] == 4
    assert conn.execute("SELECT sum(revenue) FROM shop_marts.daily_sales").fetchone() == (
        Decimal("3.60"),)

    listed = json.loads(run_cli("source", "list", "shop", "--json").output)
    assert [(r["stream"], r["files_loaded"], r["rows_loaded"]) for r in listed] == [
        ("shops", 1, 2), ("sales", 1, 2)]

    refused = run_cli("source", "remove", "shop", "pos", "--drop-data")
    assert refused.exit_code == 2 and "--yes" in refused.output
    removed = run_cli("source", "remove", "shop", "pos", "--drop-data", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "pos" not in (shop / "clients" / "shop.yaml").read_text()
    assert conn.execute("SELECT to_regclass('shop_raw.pos__sales')").fetchone() == (None,)


def test_add_refuses_a_stream_missing_a_required_column(run_cli, shop):
    result = run_cli("source", "add", "shop", "pos", "--stream", "sales", "--entity",
                     "order_lines", "--path", "exports/sales_*.csv", "--yes")
    assert result.exit_code == 2
    # Every missing field at once, each with the column that looks like it.
    assert "the files lack 6 required field(s) of order_lines: order_id, ordered_at, " \
        "location_id, product_id, quantity, line_total" in result.output
    assert "ticket, date, shop" in result.output and "Traceback" not in result.output
    assert "--map 'order_id=ticket' --map 'ordered_at=date' --map 'location_id=shop' " \
        "--map 'product_id=sku' --map 'quantity=qty' --map 'line_total=total'" in result.output


@pytest.mark.e2e
def test_run_with_a_bad_file_fails_clearly_and_keeps_the_good_ones(run_cli, shop, conn):
    assert add_sales(run_cli).exit_code == 0
    (shop / "exports" / "sales_2024-04.csv").write_bytes(b"")
    result = run_cli("run", "shop")
    assert result.exit_code == 1
    assert "exports/sales_2024-04.csv is empty (0 bytes)" in result.output
    assert "Traceback" not in result.output
    assert conn.execute("SELECT count(*) FROM shop_raw.pos__sales").fetchone() == (2,)
    assert conn.execute("SELECT status FROM goalpost.runs").fetchone() == ("failed",)

    tested = run_cli("source", "test", "shop", "pos")
    assert tested.exit_code == 1 and "FAIL pos.sales" in tested.output


@pytest.mark.e2e
def test_rest_source_add_test_list_reset(run_cli, project, conn, monkeypatch, panpan_api_data):
    from datetime import timedelta

    from goalpost.sandbox.emulators.hubspot import HubSpotEmulator

    assert run_cli("client", "add", "shop", "--name", "Shop", "--yes").exit_code == 0
    secret = "pat-eu1-cli-7d2b11"
    refused = run_cli("source", "add", "shop", "crm", "--connector", "hubspot",
                      "--config", f"access_token={secret}", "--yes")
    assert refused.exit_code == 2 and "never written to the YAML" in refused.output
    assert secret not in (project / "clients" / "shop.yaml").read_text()

    now = panpan_api_data.orders[0].sold_at + timedelta(days=5)
    with HubSpotEmulator(panpan_api_data, token=secret, now=now) as emulator:
        added = run_cli("source", "add", "shop", "crm", "--connector", "hubspot",
                        "--config", "access_token=env:SHOP_HUBSPOT_TOKEN",
                        "--config", f"base_url={emulator.url}",
                        "--config", "start_date=2025-01-01T00:00:00Z",
                        "--streams", "deals", "--yes")
        assert added.exit_code == 0, added.output
        assert "env:SHOP_HUBSPOT_TOKEN" in (project / "clients" / "shop.yaml").read_text()

        missing = run_cli("source", "test", "shop", "crm")
        assert missing.exit_code == 1 and "SHOP_HUBSPOT_TOKEN, which is not set" in \
            missing.output
        monkeypatch.setenv("SHOP_HUBSPOT_TOKEN", secret)
        tested = run_cli("source", "test", "shop", "crm")
        assert tested.exit_code == 0, tested.output
        assert "ok   crm.deals" in tested.output
        assert conn.execute("SELECT to_regclass('shop_raw.crm__deals')").fetchone() == (None,)

        ran = run_cli("run", "shop")
        assert ran.exit_code == 0, ran.output
        count = conn.execute("SELECT count(*) FROM shop_raw.crm__deals").fetchone()[0]
        assert count > 0 and f"{count:,} new" in ran.output
        listed = json.loads(run_cli("source", "list", "shop", "--json").output)
        assert [(r["stream"], r["rows_loaded"]) for r in listed] == [("deals", count)]

        reset = run_cli("source", "reset", "shop", "crm", "--stream", "deals")
        assert reset.exit_code == 0 and "reset crm.deals" in reset.output
        assert conn.execute("SELECT count(*) FROM goalpost.extract_state").fetchone() == (0,)
        again = run_cli("run", "shop")
        assert "0 new, 0 updated" in again.output
    assert secret not in ran.output + again.output + tested.output


def test_connectors_catalogue(run_cli):
    listed = json.loads(run_cli("connectors", "--json").output)
    names = {c["name"] for c in listed}
    assert {"square", "hubspot"} <= names
    square = next(c for c in listed if c["name"] == "square")
    assert square["settings"]["access_token"]["secret"] is True
    assert square["streams"]["orders"]["incremental"] == "updated_at"


def test_add_on_a_real_export_lists_every_missing_field_at_once(run_cli, project):
    from test_online_retail import DATA

    if not DATA.exists():
        pytest.skip(f"the Online Retail II file is not on this machine (looked for {DATA})")
    assert run_cli("client", "add", "retail", "--name", "Retail", "--country", "GB",
                   "--currency", "GBP", "--yes").exit_code == 0
    result = run_cli("source", "add", "retail", "shop", "--stream", "lines", "--entity",
                     "order_lines", "--path", str(DATA), "--yes")
    assert result.exit_code == 2 and "Traceback" not in result.output
    # One message, every missing field; Quantity matched quantity despite its case.
    assert ("the files lack 5 required field(s) of order_lines: order_id, ordered_at, "
            "location_id, product_id, line_total") in result.output
    assert "order_id: --map order_id=<column> (perhaps 'Invoice')" in result.output
    assert "--map unit_price=<column> (perhaps 'Price'): line_total is then computed as " \
        "quantity x unit_price" in result.output
    assert "--map location_id==online" in result.output
    assert ("--map 'order_id=Invoice' --map 'ordered_at=InvoiceDate' --map "
            "'location_id==online' --map 'product_id=StockCode' --map 'unit_price=Price'"
            in result.output)

    # The suggested command, headers in another case, works first time.
    added = run_cli("source", "add", "retail", "shop", "--stream", "lines", "--entity",
                    "order_lines", "--path", str(DATA), "--map", "order_id=invoice",
                    "--map", "ordered_at=INVOICEDATE", "--map", "location_id==online",
                    "--map", "product_id=StockCode", "--map", "unit_price=Price", "--yes")
    assert added.exit_code == 0, added.output
    assert "added stream shop.lines" in added.output
