"""bootstrap, plan and apply against the stand-in Metabase: idempotence, targeted updates,
hand-made objects left alone, and tenant isolation asserted on the permission graphs sent."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from metabase_fixtures import make_client, standin  # noqa: F401 - fixture

from goalpost.core.registry import load_client
from goalpost.metabase import template
from goalpost.metabase.api import MetabaseClient, api_key, key_path
from goalpost.metabase.apply import apply_plan
from goalpost.metabase.bootstrap import bootstrap
from goalpost.metabase.plan import compute_plan
from goalpost.sandbox.metabase_standin.server import StandinServer


def _plan(slug: str, conn: psycopg.Connection):
    return compute_plan(slug, load_client(slug), MetabaseClient.from_env(), conn)


def _apply(slug: str, conn: psycopg.Connection):
    plan = _plan(slug, conn)
    return plan, apply_plan(plan, MetabaseClient.from_env(), conn)


def _writes_during(server: StandinServer, action) -> list:  # noqa: ANN001
    before = len(server.metabase.seen)
    action()
    return [r for r in server.metabase.seen[before:] if r.method != "GET"]


def test_bootstrap_sets_up_a_fresh_metabase(standin: StandinServer, project: Path,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALPOST_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("GOALPOST_SMTP_SECURITY", "ssl")
    monkeypatch.setenv("GOALPOST_SMTP_USER", "mailer")
    monkeypatch.setenv("GOALPOST_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("GOALPOST_SMTP_FROM", "alerts@goalpost.example")
    done = bootstrap(site_name="Acme Analytics")
    state = standin.metabase.state
    assert state.setup_token is None and len([u for u in state.users.values()
                                              if u["type"] == "personal"]) == 1
    assert state.settings["site-name"] == "Acme Analytics"
    assert state.settings["start-of-week"] == "monday"
    assert state.email["email-smtp-host"] == "smtp.example.com"
    assert state.email["email-smtp-port"] == 465 and state.email["email-smtp-security"] == "ssl"
    assert state.settings["email-from-address"] == "alerts@goalpost.example"
    assert state.collection_graph[1]["root"] == "none"  # All Users locked out of collections
    key = api_key()
    assert key and key_path().stat().st_mode & 0o777 == 0o600
    assert done.key_saved_to == str(key_path())
    # The key is an admin key that later calls use.
    with MetabaseClient(key=key) as mb:
        assert mb.get("/api/permissions/graph", what="test")["revision"] >= 0
    # Again: nothing to set up, the key still works, no new key.
    monkeypatch.delenv("GOALPOST_SMTP_PASSWORD")
    writes = _writes_during(standin, bootstrap)
    assert writes == []
    assert api_key() == key


def test_plan_apply_apply_again_writes_nothing(standin: StandinServer, project: Path,  # noqa: F811
                                               conn: psycopg.Connection,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    make_client(project, conn, "acme")
    bootstrap()
    plan = _plan("acme", conn)
    text = plan.render()
    counts = plan.counts()
    # Every template's cards but those per dimension: acme declares none.
    cards = sum(len(t.cards) for t in template.templates().values()) - sum(
        c.per_dimension for t in template.templates().values() for c in t.cards)
    assert counts == {"create": 3 + 1 + cards + len(template.templates()), "update": 0,
                      "delete": 0, "unchanged": 0}
    assert "+ card        sales_overview.revenue_per_day" in text
    first = _writes_during(standin, lambda: apply_plan(plan, MetabaseClient.from_env(), conn))
    assert len(first) > cards
    state = standin.metabase.state
    assert len([c for c in state.cards.values() if not c["archived"]]) == cards
    dashboards = {d["name"]: d for d in state.dashboards.values()}
    sales = dashboards["Sales overview"]
    assert len(sales["dashcards"]) == len(
        [c for c in template.templates()["sales_overview"].cards if not c.per_dimension])
    assert {p["type"] for p in sales["parameters"]} == {"date/all-options", "string/="}
    assert all(m["target"][0] == "dimension" for d in sales["dashcards"]
               for m in d["parameter_mappings"])
    # Second round: the plan is empty and applying writes nothing.
    again = _plan("acme", conn)
    assert again.empty, again.render()
    assert "no changes" in again.render()
    second = _writes_during(standin, lambda: apply_plan(again, MetabaseClient.from_env(), conn))
    assert second == []
    print(f"first apply: {len(first)} writes, second apply: {len(second)} writes")


def test_changed_template_updates_only_that_card(standin: StandinServer,  # noqa: F811
                                                 project: Path, conn: psycopg.Connection,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(template.TEMPLATES_DIR, folder)
    monkeypatch.setattr(template, "TEMPLATES_DIR", folder)
    make_client(project, conn, "acme")
    bootstrap()
    _apply("acme", conn)
    path = folder / "sales_overview.yaml"
    path.write_text(path.read_text().replace("name: Top products", "name: Best sellers"))
    plan = _plan("acme", conn)
    assert [(c.action, c.kind, c.key, c.reason) for c in plan.pending] == [
        ("update", "card", "sales_overview.top_products", "name")]
    writes = _writes_during(standin, lambda: apply_plan(plan, MetabaseClient.from_env(), conn))
    card = next(c for c in standin.metabase.state.cards.values() if c["name"] == "Best sellers")
    assert [(w.method, w.path) for w in writes] == [("PUT", f"/api/card/{card['id']}")]
    # A card removed from the template is archived; the dashboard loses its dashcard.
    text = path.read_text()
    start = text.index("  - key: top_products")
    path.write_text(text[:start])
    plan = _plan("acme", conn)
    assert {(c.action, c.kind, c.key) for c in plan.pending} == {
        ("update", "dashboard", "sales_overview"),
        ("delete", "card", "sales_overview.top_products")}
    apply_plan(plan, MetabaseClient.from_env(), conn)
    assert standin.metabase.state.cards[card["id"]]["archived"] is True
    assert _plan("acme", conn).empty


def test_hand_made_objects_are_left_alone(standin: StandinServer, project: Path,  # noqa: F811
                                          conn: psycopg.Connection) -> None:
    make_client(project, conn, "acme")
    bootstrap()
    _apply("acme", conn)
    mb = MetabaseClient.from_env()
    collection = next(c for c in standin.metabase.state.collections.values()
                      if c["name"] == "Acme Shop")
    database = next(iter(standin.metabase.state.databases))
    hand_made = mb.post("/api/card/", {
        "name": "My own question", "display": "table", "visualization_settings": {},
        "collection_id": collection["id"],
        "dataset_query": {"database": database, "type": "native",
                          "native": {"query": "SELECT 1", "template-tags": {}}}}, what="test")
    assert _plan("acme", conn).empty
    _apply("acme", conn)
    assert standin.metabase.state.cards[hand_made["id"]] == hand_made
    # A provisioned card changed by hand is put back.
    ours = next(c for c in standin.metabase.state.cards.values() if c["name"] == "Revenue")
    mb.put(f"/api/card/{ours['id']}", {"name": "Renamed by hand"}, what="test")
    plan = _plan("acme", conn)
    assert [(c.action, c.key, c.reason) for c in plan.pending] == [
        ("update", "sales_overview.revenue", "changed in Metabase: name")]
    apply_plan(plan, mb, conn)
    assert standin.metabase.state.cards[ours["id"]]["name"] == "Revenue"


def test_each_client_sees_only_its_own(standin: StandinServer, project: Path,  # noqa: F811
                                       conn: psycopg.Connection) -> None:
    make_client(project, conn, "client_a")
    make_client(project, conn, "client_b")
    bootstrap()
    _apply("client_a", conn)
    _apply("client_b", conn)
    state = standin.metabase.state
    groups = {g["name"]: g["id"] for g in state.groups.values()}
    dbs = {d["name"]: d["id"] for d in state.databases.values()}
    colls = {c["name"]: c["id"] for c in state.collections.values()}
    a_group, b_group = groups["Client_A Shop (client_a)"], groups["Client_B Shop (client_b)"]
    a_db, b_db = dbs["Client_A Shop (client_a)"], dbs["Client_B Shop (client_b)"]
    a_coll, b_coll = colls["Client_A Shop"], colls["Client_B Shop"]
    # The graphs as sent (every PUT), merged in order.
    sent_data: dict[str, dict[str, dict]] = {}
    sent_coll: dict[str, dict[str, str]] = {}
    for request in standin.metabase.seen:
        if request.method == "PUT" and request.path == "/api/permissions/graph":
            for group, entries in request.body["groups"].items():
                for db, perms in entries.items():
                    sent_data.setdefault(group, {}).setdefault(db, {}).update(perms)
        if request.method == "PUT" and request.path == "/api/collection/graph":
            for group, entries in request.body["groups"].items():
                sent_coll.setdefault(group, {}).update(entries)
    def sent(group: int, db: int) -> str:
        """What the graphs sent say; a group never mentioned keeps a new group's default."""
        return sent_data.get(str(group), {}).get(str(db), {}).get("create-queries", "no")

    assert sent(a_group, a_db) == "query-builder-and-native"
    assert sent(a_group, b_db) == "no"
    assert sent(b_group, a_db) == "no"
    assert sent(b_group, b_db) == "query-builder-and-native"
    def sent_coll_level(group: int, coll: int | str) -> str:
        return sent_coll.get(str(group), {}).get(str(coll), "none")

    assert sent_coll_level(a_group, a_coll) == "read"
    assert sent_coll_level(b_group, b_coll) == "read"
    for group, other in ((a_group, b_coll), (b_group, a_coll)):
        assert sent_coll_level(group, other) == "none"
        assert sent_coll_level(group, "root") == "none"
    for db in (a_db, b_db):
        assert sent(1, db) == "no"
    for coll in (a_coll, b_coll, "root"):
        assert sent_coll_level(1, coll) == "none"
    assert sent_coll["1"]["root"] == "none"  # bootstrap's lockdown, sent explicitly
    # No graph sent ever gives a group anything on another client's objects.
    assert {sent(g, d) for g, d in ((a_group, b_db), (b_group, a_db), (1, a_db), (1, b_db))} \
        == {"no"}
    # And the stand-in's resulting graphs agree.
    for group, own_db, other_db in ((a_group, a_db, b_db), (b_group, b_db, a_db)):
        assert state.data_graph[group][own_db]["create-queries"] != "no"
        assert state.data_graph[group][other_db]["create-queries"] == "no"
    assert all(state.data_graph[1][db]["create-queries"] == "no" for db in (a_db, b_db))
    assert all(state.collection_graph[1].get(str(c), "none") == "none" for c in (a_coll, b_coll))
    # Owners are in their own client's group only.
    owner_a = next(u for u in state.users.values() if u["email"] == "owner@client_a.example")
    member_of = {m["group_id"] for m in state.memberships.values()
                 if m["user_id"] == owner_a["id"]}
    assert member_of == {1, a_group}
    # Applying A again after B exists writes nothing.
    assert _plan("client_a", conn).empty
