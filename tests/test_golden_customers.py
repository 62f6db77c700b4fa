"""Customers unified across a POS and a CRM: the golden month's sales served by Square, its
customers also kept (written differently) in HubSpot, with a lead who never bought.

HubSpot knew Alice before her first purchase (so she was acquired by the CRM), with her email
in capitals and her phone written the French national way; Bruno was entered in HubSpot after
the POS recorded him, without a phone; Chloé is only a lead."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import golden_data
import orjson
import psycopg
import pytest
from golden_data import D

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
from goalpost.sandbox.emulators.panpan import Customer
from goalpost.sandbox.emulators.square import SquareEmulator

pytestmark = pytest.mark.e2e

CHLOE = Customer("C0003", "Chloé", "Bernard", "chloe.bernard@example.fr", "06 11 22 33 44",
                 golden_data.paris("2025-01-08 00:00"), False)


def crm_data():  # noqa: ANN201 - PanPanData
    data = golden_data.golden_data()
    alice, bruno = data.customers
    data.customers = [
        replace(alice, email=alice.email.upper(), phone="06 12 34 56 78",
                signed_up=golden_data.paris("2025-01-05 00:00")),
        replace(bruno, phone="", signed_up=golden_data.paris("2025-01-20 00:00")),
        CHLOE,
    ]
    return data


@pytest.fixture
def pos_and_crm(project, database_url, monkeypatch: pytest.MonkeyPatch):
    square = SquareEmulator(golden_data.golden_data(), token="sq-token", now=golden_data.NOW)
    hubspot = HubSpotEmulator(crm_data(), token="hs-token", now=golden_data.NOW)
    square.start()
    hubspot.start()
    monkeypatch.setenv("GOLD_SQUARE_TOKEN", "sq-token")
    monkeypatch.setenv("GOLD_HUBSPOT_TOKEN", "hs-token")
    document = {"name": "Gold", "timezone": "Europe/Paris", "country": "FR", "sources": [
        {"name": "pos", "connector": "square",
         "config": {"base_url": square.url, "access_token": "env:GOLD_SQUARE_TOKEN",
                    "start_date": golden_data.START_DATE}},
        {"name": "crm", "connector": "hubspot", "streams": ["contacts", "archived_contacts"],
         "config": {"base_url": hubspot.url, "access_token": "env:GOLD_HUBSPOT_TOKEN",
                    "start_date": golden_data.START_DATE}},
    ]}
    (project / "clients" / "gold.yaml").write_bytes(orjson.dumps(document))
    yield
    square.stop()
    hubspot.stop()


def test_one_person_per_customer_across_pos_and_crm(pos_and_crm, conn: psycopg.Connection) -> None:
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]

    people = {r[0]: r[1:] for r in conn.execute("""
        SELECT first_name, email, phone, first_seen_on, acquisition_source, sources, records,
               first_order_on, last_order_on, orders, revenue
        FROM gold_marts.customers""")}
    assert people == {
        # Alice: 12.30 on 14 Jan and 16.20 on 3 Feb; HubSpot had her since 5 Jan.
        "Alice": ("alice.martin@example.fr", "06 12 34 56 78", date(2025, 1, 5), "crm",
                  "crm, pos", 2, date(2025, 1, 14), date(2025, 2, 3), 2, D("28.50")),
        # Bruno: 31.80 on 15 Jan, 24.00 back on 16 Jan; Square had him since 12 Jan.
        "Bruno": ("bruno.petit@example.fr", "+33 6 98 76 54 32", date(2025, 1, 12), "pos",
                  "crm, pos", 2, date(2025, 1, 15), date(2025, 1, 15), 1, D("7.80")),
        "Chloé": ("chloe.bernard@example.fr", "06 11 22 33 44", date(2025, 1, 8), "crm",
                  "crm", 1, None, None, 0, D("0")),
    }
    # Every order of a known customer names the person.
    assert conn.execute("SELECT count(*) FROM gold_staging.orders WHERE customer_id IS NOT NULL "
                        "AND customer_key IS NULL").fetchone() == (0,)

    monthly = {(r[0], r[1]): r[2:] for r in conn.execute("""
        SELECT month, acquisition_source, new_customers, active_customers, returning_customers,
               repeat_rate
        FROM gold_marts.customers_monthly""")}
    assert monthly == {
        (date(2025, 1, 1), "crm"): (1, 1, 0, D("0")),
        (date(2025, 1, 1), "pos"): (1, 1, 0, D("0")),
        (date(2025, 2, 1), "crm"): (0, 1, 1, D("1")),
    }
    # The sales marts count people, as before.
    figures = golden_data.mart_figures(conn, "gold", {"Boutique": "en_boutique",
                                                      "Livraison": "livraison"})
    assert figures == golden_data.EXPECTED
