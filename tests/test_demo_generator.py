"""The PanPan demo generator: reproducible files in the documented formats, sales that add up,
and planted events (closures, stock-outs, anomalies) that are really in the data."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from goalpost.sandbox.demo.generator import GroundTruth, generate_panpan

END = date(2025, 2, 28)  # 150 days from 2 Oct 2024: holidays, Christmas, galettes, a price rise
DAYS = 150
SCALE = 0.5
SEED = 11
SHOPS = {"LYO-01", "LYO-02", "VIL-01"}


def _cents(series: pd.Series) -> pd.Series:
    return (series * 100).round().astype("int64")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth, list[str]]:
    out = tmp_path_factory.mktemp("panpan")
    messages: list[str] = []
    truth = generate_panpan(out, end=END, days=DAYS, seed=SEED, scale=SCALE,
                            progress=messages.append)
    return out, truth, messages


@pytest.fixture(scope="module")
def sales(demo: tuple[Path, GroundTruth, list[str]]) -> pd.DataFrame:
    out = demo[0]
    frames = [pd.read_csv(f, sep=";", decimal=",", dtype={"customer_id": str, "sold_at": str})
              for f in sorted(out.glob("sales_*.csv.gz"))]
    df = pd.concat(frames, ignore_index=True)
    df["ts"] = pd.to_datetime(df["sold_at"], format="%d/%m/%Y %H:%M")
    df["day"] = df["ts"].dt.date
    df["is_return"] = df["receipt_no"].str.startswith("RET-")
    return df


@pytest.fixture(scope="module")
def stock(demo: tuple[Path, GroundTruth, list[str]]) -> pd.DataFrame:
    out = demo[0]
    df = pd.concat([pd.read_csv(f) for f in sorted(out.glob("stock_counts_*.csv.gz"))],
                   ignore_index=True)
    df["count_date"] = pd.to_datetime(df["count_date"], format="%Y-%m-%d").dt.date
    return df


def test_same_arguments_give_identical_bytes(
    demo: tuple[Path, GroundTruth, list[str]], tmp_path: Path
) -> None:
    out = demo[0]
    again = tmp_path / "again"
    generate_panpan(again, end=END, days=DAYS, seed=SEED, scale=SCALE)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    generate_panpan(other, end=END, days=DAYS, seed=SEED + 1, scale=SCALE)
    assert (other / "sales_2024-12.csv.gz").read_bytes() != (
        out / "sales_2024-12.csv.gz").read_bytes()


def test_gzip_headers_are_reproducible(demo: tuple[Path, GroundTruth, list[str]]) -> None:
    raw = (demo[0] / "sales_2025-01.csv.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[3] & 0x08 == 0, "no file name in the gzip header"
    assert raw[4:8] == b"\x00\x00\x00\x00", "mtime is 0"


def test_files_and_headers(demo: tuple[Path, GroundTruth, list[str]]) -> None:
    out, truth, messages = demo
    months = [f"2024-{m:02d}" for m in range(10, 13)] + ["2025-01", "2025-02"]
    assert sorted(p.name for p in out.glob("sales_*.csv.gz")) == [
        f"sales_{m}.csv.gz" for m in months]
    assert sorted(p.name for p in out.glob("stock_counts_*.csv.gz")) == [
        f"stock_counts_{m}.csv.gz" for m in months]
    first = {
        "shops.csv": "shop_id,shop_name,city,opened_on",
        "products.csv": "sku,name,category,unit_price,unit_cost,reorder_point",
        "customers.csv": "customer_id,first_name,last_name,email,phone,signup_date,"
                         "loyalty_opt_in",
    }
    for name, header in first.items():
        assert (out / name).read_text(encoding="utf-8").splitlines()[0] == header
    with gzip.open(out / "sales_2024-11.csv.gz", "rt", encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == (
            "receipt_no;sold_at;shop_id;channel;customer_id;line_no;sku;product_name;"
            "quantity;unit_price;discount;line_total")
        fields = f.readline().rstrip("\n").split(";")
        assert len(fields) == 12
        assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", fields[1])
        assert all(re.fullmatch(r"-?\d+,\d\d", v) for v in fields[9:])
    with gzip.open(out / "stock_counts_2024-11.csv.gz", "rt", encoding="utf-8") as f:
        assert f.readline() == "count_date,shop_id,sku,on_hand\n"
    assert truth.counts["files"] == 5 + 2 * len(months)
    assert any(m.startswith("sales 2024-12: ") and m.endswith(" lines") for m in messages)
    data = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    assert data["params"] == {"start": "2024-10-02", "end": "2025-02-28", "days": DAYS,
                              "seed": SEED, "scale": SCALE, "timezone": "Europe/Paris",
                              "currency": "EUR"}
    assert GroundTruth.from_json(out / "ground_truth.json") == truth
    assert (out / "ground_truth.json").read_text(encoding="utf-8") == truth.to_json()


def test_shops_products_customers(demo: tuple[Path, GroundTruth, list[str]]) -> None:
    out, truth, _ = demo
    shops = pd.read_csv(out / "shops.csv")
    assert set(shops["shop_id"]) == SHOPS
    assert shops["shop_name"].str.startswith("PanPan ").all()

    products = pd.read_csv(out / "products.csv", dtype={"unit_price": str, "unit_cost": str})
    assert 35 <= len(products) <= 45 and products["sku"].is_unique
    assert products["unit_price"].str.fullmatch(r"\d+\.\d\d").all()
    ratio = products["unit_cost"].astype(float) / products["unit_price"].astype(float)
    assert ratio.between(0.25, 0.45).all()
    names = " ".join(products["name"])
    assert all(ch in names for ch in "éèû")
    assert {"Galette des rois (6 parts)", "Bûche de Noël (6 parts)"} <= set(products["name"])
    assert (products["reorder_point"] >= 1).all()

    customers = pd.read_csv(out / "customers.csv", dtype=str, keep_default_na=False)
    assert customers["customer_id"].is_unique
    assert len(customers) == truth.counts["customers"]
    assert set(customers["loyalty_opt_in"]) == {"true", "false"}
    phones = customers["phone"][customers["phone"] != ""]
    assert phones.str.fullmatch(r"(\+33 [67]|0[67])( \d\d){4}").all()
    emails = customers["email"][customers["email"] != ""]
    assert (emails != emails.str.strip()).any() and (emails == emails.str.upper()).any()
    signup = pd.to_datetime(customers["signup_date"], format="%Y-%m-%d")
    assert signup.max().date() <= END
    in_range = signup[signup.dt.date >= truth.start]
    weeks = in_range.dt.to_period("W").nunique()
    assert weeks >= DAYS // 7 - 1, "new customers sign up every week"
    ids = set(customers["customer_id"])
    for original, later in truth.duplicate_customers:
        assert original in ids and later in ids


def test_line_totals_are_exact(sales: pd.DataFrame, demo: tuple) -> None:
    truth = demo[1]
    assert len(sales) == truth.counts["lines"]
    assert sales["receipt_no"].nunique() == truth.counts["receipts"]
    assert 300 * DAYS * SCALE < len(sales) < 1500 * DAYS * SCALE
    expected = sales["quantity"] * _cents(sales["unit_price"]) - _cents(sales["discount"])
    assert (expected == _cents(sales["line_total"])).all()
    assert (sales["quantity"] != 0).all()
    assert (sales.loc[~sales["is_return"], "line_total"] >= 0).all()
    assert (sales["discount"] > 0).any()


def test_receipts_are_consistent(sales: pd.DataFrame, demo: tuple) -> None:
    truth = demo[1]
    assert not sales.duplicated(["receipt_no", "line_no"]).any()
    assert sales["receipt_no"].str.fullmatch(r"(RET-)?(LYO-01|LYO-02|VIL-01)-\d{8}-\d{4}").all()
    per_receipt = sales.groupby("receipt_no").agg(
        {"sold_at": "nunique", "shop_id": "nunique", "channel": "nunique", "line_no": "max"})
    assert (per_receipt[["sold_at", "shop_id", "channel"]] == 1).all().all()
    assert (per_receipt["line_no"] == sales.groupby("receipt_no").size()).all()
    assert not sales.duplicated(["receipt_no", "sku"]).any()
    sale = sales[~sales["is_return"]]
    assert (sale["receipt_no"].str[:6] == sale["shop_id"]).all()
    assert (sale["receipt_no"].str[7:15] == sale["ts"].dt.strftime("%Y%m%d")).all()
    assert set(sales["channel"]) == {"en_boutique", "livraison"}
    assert sales["day"].min() >= truth.start and sales["day"].max() <= truth.end
    minutes = sales["ts"].dt.hour * 60 + sales["ts"].dt.minute
    assert minutes.between(6 * 60 + 30, 20 * 60 - 1).all()


def test_channels_and_customers(sales: pd.DataFrame, demo: tuple) -> None:
    out = demo[0]
    receipts = sales[~sales["is_return"]].groupby("receipt_no").agg(
        channel=("channel", "first"), lines=("line_no", "max"), total=("line_total", "sum"),
        customer=("customer_id", "first"), hour=("ts", lambda t: t.iloc[0].hour))
    store = receipts[receipts["channel"] == "en_boutique"]
    delivery = receipts[receipts["channel"] == "livraison"]
    assert len(delivery) < len(store) / 10
    assert delivery["lines"].mean() > 2 * store["lines"].mean()
    assert delivery["total"].mean() > 3 * store["total"].mean()
    assert delivery["hour"].isin([8, 9, 10, 11, 12, 13, 17, 18, 19]).all()
    assert 0.5 < store["customer"].isna().mean() < 0.9, "most in-store buyers are anonymous"
    customers = pd.read_csv(out / "customers.csv", dtype=str, keep_default_na=False)
    signup = dict(zip(customers["customer_id"], customers["signup_date"], strict=True))
    known = sales.dropna(subset=["customer_id"])
    assert known["customer_id"].isin(signup).all()
    first_visit = known.groupby("customer_id")["day"].min()
    assert all(day.isoformat() >= signup[c] for c, day in first_visit.items())
    visits = known.groupby("customer_id")["receipt_no"].nunique()
    assert (visits > 1).mean() > 0.5, "loyalty customers come back"


def test_closed_days_have_no_sales(sales: pd.DataFrame, demo: tuple) -> None:
    truth = demo[1]
    for shop in SHOPS:
        closed = set(truth.closed_days[shop])
        assert {date(2024, 12, 25), date(2025, 1, 1)} <= closed
        assert not sales[(sales["shop_id"] == shop) & sales["day"].isin(closed)].shape[0]
    mondays = {truth.start + timedelta(days=i) for i in range(DAYS)
               if (truth.start + timedelta(days=i)).weekday() == 0}
    assert mondays <= set(truth.closed_days["LYO-01"])
    assert not mondays & set(truth.closed_days["LYO-02"])
    sunday_like = sales[sales["day"] == date(2024, 11, 1)]  # All Saints' Day, a Friday
    assert len(sunday_like) > 0 and sunday_like["ts"].dt.hour.max() < 14


def test_seasonal_products_and_price_rise(sales: pd.DataFrame) -> None:
    sale = sales[~sales["is_return"]]
    galette = sale[sale["sku"] == "SAI-001"]
    buche = sale[sale["sku"] == "SAI-002"]
    assert len(galette) > 20 and len(buche) > 5
    assert (galette["ts"].dt.month == 1).all()
    assert ((buche["ts"].dt.month == 12) & buche["ts"].dt.day.between(10, 24)).all()
    baguette = sale[sale["sku"] == "PAI-001"].groupby(sale["ts"].dt.year)["unit_price"]
    assert baguette.nunique().max() == 1, "one price per year"
    before, after = baguette.first()[2024], baguette.first()[2025]
    assert 1.02 < after / before < 1.09


def test_stockouts_are_in_the_data(sales: pd.DataFrame, stock: pd.DataFrame,
                                   demo: tuple) -> None:
    truth = demo[1]
    assert 1 <= len(truth.stockouts) <= 8
    warm_up = truth.start + timedelta(days=min(60, DAYS // 3))
    for s in truth.stockouts:
        assert warm_up <= s.start and s.end <= truth.end and 1 <= (s.end - s.start).days <= 5
        span = (sales["day"] >= s.start) & (sales["day"] <= s.end)
        assert not (span & (sales["shop_id"] == s.shop_id) & (sales["sku"] == s.sku)).any()
        counted = stock[(stock["count_date"] >= s.start) & (stock["count_date"] <= s.end)
                        & (stock["shop_id"] == s.shop_id) & (stock["sku"] == s.sku)]
        assert len(counted) >= 2 and (counted["on_hand"] == 0).all()
        normally = sales[(sales["shop_id"] == s.shop_id) & (sales["sku"] == s.sku)]
        assert normally["day"].nunique() > DAYS / 3, "the product usually sells"


def test_stock_follows_sales(sales: pd.DataFrame, stock: pd.DataFrame, demo: tuple) -> None:
    out, truth, _ = demo
    products = pd.read_csv(out / "products.csv")
    assert (stock["on_hand"] >= 0).all()
    assert not stock.duplicated(["count_date", "shop_id", "sku"]).any()
    for shop in SHOPS:
        closed = set(truth.closed_days[shop])
        assert not stock[(stock["shop_id"] == shop) & stock["count_date"].isin(closed)].shape[0]
    assert set(stock.loc[stock["sku"] == "SAI-001", "count_date"].map(lambda d: d.month)) == {1}

    packaged = set(products.loc[products["category"].isin(["boisson", "épicerie"]), "sku"])
    planted = {(s.shop_id, s.sku) for s in truth.stockouts}
    sold = (sales[~sales["is_return"]].groupby(["day", "shop_id", "sku"])["quantity"].sum())
    checked = 0
    for (shop, sku), counts in stock[stock["sku"].isin(packaged)].groupby(["shop_id", "sku"]):
        if (shop, sku) in planted:
            continue
        counts = counts.sort_values("count_date")
        for prev, cur in zip(counts.itertuples(), counts.iloc[1:].itertuples(), strict=False):
            gap = (cur.count_date - prev.count_date).days
            delivery_between = any((prev.count_date + timedelta(days=k)).weekday() == 1
                                   for k in range(1, gap + 1))
            if not delivery_between:
                assert cur.on_hand == prev.on_hand - sold.get((cur.count_date, shop, sku), 0)
                checked += 1
    assert checked > 100
    reorder = products.set_index("sku")["reorder_point"]
    in_planted = pd.Series(False, index=stock.index)
    for s in truth.stockouts:
        in_planted |= ((stock["shop_id"] == s.shop_id) & (stock["sku"] == s.sku)
                       & (stock["count_date"] >= s.start) & (stock["count_date"] <= s.end))
    below = stock[(stock["on_hand"] < stock["sku"].map(reorder)) & ~in_planted]
    assert below["sku"].isin(packaged).all(), "fresh goods only run low when planted"
    assert len(below) > 0, "packaged goods drift under their reorder point now and then"


def test_a_short_delivery_leaves_one_product_under_its_reorder_point(
        stock: pd.DataFrame, demo: tuple) -> None:
    out, truth, _ = demo
    (low,) = truth.low_stock
    products = pd.read_csv(out / "products.csv").set_index("sku")
    assert products.loc[low.sku, "category"] in ("boisson", "épicerie")
    assert low.reorder_point == products.loc[low.sku, "reorder_point"]
    assert low.delivered_on.weekday() == 1 and low.delivered_on <= low.since
    assert truth.end - timedelta(days=2) <= low.since <= truth.end and low.short_by >= 1
    counts = stock[(stock["shop_id"] == low.shop_id) & (stock["sku"] == low.sku)]
    counts = counts.set_index("count_date")["on_hand"].sort_index()
    since = counts[counts.index >= low.since]
    assert since.index[-1] == truth.end and since.iloc[-1] == low.on_hand
    assert ((since > 0) & (since < low.reorder_point)).all()
    assert counts[counts.index < low.since].iloc[-1] >= low.reorder_point
    # Nothing else is under its reorder point at its last count: the owner's email is about it.
    last = stock.sort_values("count_date").groupby(["shop_id", "sku"]).tail(1)
    below = last[last["on_hand"] < last["sku"].map(products["reorder_point"])]
    assert list(zip(below["shop_id"], below["sku"], strict=True)) == [(low.shop_id, low.sku)]
    # Ground truth written before short deliveries were planted still loads.
    older = {k: v for k, v in truth.to_dict().items() if k != "low_stock"}
    assert GroundTruth.from_dict(older).low_stock == ()


def test_anomalies_stand_out(sales: pd.DataFrame, demo: tuple) -> None:
    truth = demo[1]
    assert {a.kind for a in truth.anomalies} == {"drop", "spike"}
    warm_up = truth.start + timedelta(days=min(60, DAYS // 3))
    sale = sales[~sales["is_return"]]
    for a in truth.anomalies:
        assert warm_up <= a.date <= truth.end
        if a.shop_id == "delivery":
            rows = sale[sale["channel"] == "livraison"]
        else:
            assert a.shop_id in SHOPS and a.date not in truth.closed_days[a.shop_id]
            rows = sale[sale["shop_id"] == a.shop_id]
        daily = rows.groupby("day")["line_total"].sum()
        same_weekday = daily[[d.weekday() == a.date.weekday() and d != a.date
                              and abs((d - a.date).days) <= 42 for d in daily.index]]
        ratio = daily.get(a.date, 0.0) / same_weekday.median()
        if a.kind == "drop":
            assert 0.3 <= a.factor <= 0.5 and ratio < 0.7, (a, ratio)
        else:
            assert 1.8 <= a.factor <= 2.5 and ratio > 1.5, (a, ratio)


def test_refunds(sales: pd.DataFrame, demo: tuple) -> None:
    truth = demo[1]
    refunds = sales[sales["is_return"]]
    assert len(refunds) == truth.counts["refunds"]
    share = len(refunds) / sales["receipt_no"].nunique()
    assert 0.0005 < share < 0.01
    assert (refunds["quantity"] < 0).all() and (refunds["line_total"] < 0).all()
    sale = sales[~sales["is_return"]].set_index(["receipt_no", "sku"]).sort_index()
    for r in refunds.itertuples():
        original = sale.loc[(r.receipt_no.removeprefix("RET-"), r.sku)]
        assert original["ts"] <= r.ts and -r.quantity <= original["quantity"]
        assert original["shop_id"] == r.shop_id


def test_event_counts_follow_the_range(tmp_path: Path) -> None:
    short = generate_panpan(tmp_path / "short", end=date(2024, 3, 31), days=20, scale=0.05)
    assert short.anomalies == () and short.stockouts == ()
    month = generate_panpan(tmp_path / "month", end=date(2024, 3, 31), days=30, scale=0.05)
    assert len(month.anomalies) >= 1 and len(month.stockouts) >= 1
    for a in month.anomalies:
        assert month.start <= a.date <= month.end
    big = generate_panpan(tmp_path / "big", end=date(2024, 3, 31), days=730, scale=0.02)
    assert 6 <= len(big.anomalies) <= 10 and 5 <= len(big.stockouts) <= 8
    assert min(a.date for a in big.anomalies) >= big.start + timedelta(days=60)


def test_regenerating_removes_stale_months(tmp_path: Path) -> None:
    (tmp_path / "sales_1999-01.csv.gz").write_bytes(b"stale")
    generate_panpan(tmp_path, end=date(2024, 3, 31), days=10, scale=0.05)
    assert not (tmp_path / "sales_1999-01.csv.gz").exists()
    assert (tmp_path / "sales_2024-03.csv.gz").exists()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_panpan(tmp_path, days=0)
    with pytest.raises(ValueError):
        generate_panpan(tmp_path, scale=0)
