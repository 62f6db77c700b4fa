"""Golden test of the HubSpot connector: the customers of tests/golden_data.py served by the
HubSpot emulator, extracted and built by `goalpost run`, are the two golden customers.

Besides the golden customers, HubSpot holds a contact deleted (archived) after the first run
and a duplicate of Alice merged with her after it, and one email and name typed carelessly:
the second run must show only the two golden customers, Alice under the merged record's id."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import golden_data
import psycopg
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
from goalpost.sandbox.emulators.panpan import PARIS, Customer

pytestmark = pytest.mark.e2e

TOKEN = "pat-eu1-golden-hubspot"
# Contacts beside the golden customers: one to delete, one duplicate of Alice to merge.
ARCHIVED = Customer("C0003", "Chloé", "Bernard", "chloe.bernard@example.fr", "",
                    golden_data.paris("2025-01-20 00:00"), False)
DUPLICATE = Customer("C0011", "Alice", "Martin", "a.martin@example.fr", "",
                     golden_data.paris("2025-01-20 00:00"), False)


def contact_id(customer: Customer) -> str:
    """The emulator's HubSpot id of a PanPan customer."""
    return str(1_000_000 + int(customer.customer_id[1:]))


@pytest.fixture
def hubspot_client(api_source):
    data = golden_data.golden_data()
    bruno = data.customers[1]
    data.customers[1] = replace(bruno, first_name=f" {bruno.first_name} ",
                                email=f"  {bruno.email.title()} ")
    data.customers += [ARCHIVED, DUPLICATE]
    emulator = HubSpotEmulator(data, token=TOKEN, now=golden_data.NOW)
    emulator.start()
    api_source("gold", "crm", "hubspot", emulator.url, {"access_token": TOKEN},
               start_date=golden_data.START_DATE)
    yield emulator
    emulator.stop()


def customers(conn: psycopg.Connection) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT customer_id, first_name, last_name, email, phone, country, created_at "
        "FROM gold_staging.customers")}


def test_hubspot_customers_are_the_golden_ones(hubspot_client: HubSpotEmulator,
                                               conn: psycopg.Connection) -> None:
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    first = customers(conn)
    assert set(first) == {contact_id(c) for c in [*golden_data.CUSTOMERS, ARCHIVED, DUPLICATE]}

    at = golden_data.NOW + timedelta(hours=1)
    hubspot_client.archive("contacts", ARCHIVED.customer_id, at)
    alice, bruno = golden_data.CUSTOMERS
    merged_id = hubspot_client.merge("contacts", alice.customer_id, DUPLICATE.customer_id, at)
    hubspot_client.now = at + timedelta(hours=1)
    run = run_client("gold")
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    transform = next(s for s in run.steps if s.kind == "transform")
    assert transform.details["audit_failures"] == []  # unique and not null

    # Both deleted and merged-away contacts are still in the contacts read before: staging
    # leaves them out.
    raw = {r[0] for r in conn.execute("SELECT data ->> 'id' FROM gold_raw.crm__contacts")}
    assert {contact_id(ARCHIVED), contact_id(alice), contact_id(DUPLICATE)} <= raw

    def golden(customer: Customer) -> tuple:
        # signed_up is midnight in Paris: created_at shows that wall time.
        local = customer.signed_up.astimezone(PARIS).replace(tzinfo=None)
        assert local.time() == datetime.min.time()
        return (customer.first_name, customer.last_name, customer.email, customer.phone, None,
                local)

    assert customers(conn) == {merged_id: golden(alice), contact_id(bruno): golden(bruno)}
