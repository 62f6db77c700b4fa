"""Realistic, deterministic demo data for PanPan, a bakery in Lyon with 3 shops and a delivery
service, written as the CSV exports its point-of-sale system would give.

The demo, the docs and the anomaly/stock tests all need the same believable history: weekly and
yearly seasonality, French public holidays, loyalty customers who come back (or churn), price
rises, refunds, stock that follows the sales, and a few planted events whose truth is known.
Everything is drawn from one `numpy.random.default_rng(seed)` in a fixed order and vectorised per
month, so the same arguments always give byte-identical files, fast. The planted events are
returned and written to `ground_truth.json`, the answer key that detectors are scored against:

- `anomalies`: a day of unusual traffic at one shop or on the delivery channel (a power cut,
  a street party), after a warm-up of 60 days;
- `stockouts`: a few days in which a shop holds and sells none of a product;
- `low_stock`: the owner's alert story at the end of the range: one packaged product's last
  delivery to one shop fell short, so its count is under the reorder point (not zero) over
  the last 1-3 days: `goalpost demo` emails it (see _short_delivery).

Beside the till, two sources a bakery keeps outside it: the door counters' daily footfall per
shop (`footfall.csv`: the in-shop receipts plus the visitors who bought nothing, about 38% of
them) and the monthly marketing spend sheet (`marketing_spend.xlsx`). They are drawn from
their own generators (seeded from `seed`), so the POS files are the same with or without them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import holidays
import numpy as np
import openpyxl

TIMEZONE = "Europe/Paris"
CURRENCY = "EUR"
SALES_HEADER = (
    "receipt_no;sold_at;shop_id;channel;customer_id;line_no;sku;product_name;quantity;"
    "unit_price;discount;line_total"
)
CHANNELS = ("en_boutique", "livraison")
DELIVERY = "delivery"
CONVERSION = (62.0, 38.0)  # Beta parameters of a shop day's share of visitors who buy
SPEND_BASE = 700.0  # marketing spend in an ordinary month, EUR
SPEND_SEASON = {1: 1.3, 9: 1.4, 12: 1.5, 7: 0.6, 8: 0.5}  # galettes, la rentrée, Christmas


# ---------------------------------------------------------------------------------------------
# Reference data


@dataclass(frozen=True)
class _Shop:
    shop_id: str
    name: str
    city: str
    opened_on: date
    hours: tuple[int, int, int, int]  # minutes: Mon-Sat open, close; Sunday/holiday open, close
    dow: tuple[float, ...]  # traffic by weekday, Monday first; 0 means closed that weekday
    walk_in: float  # anonymous receipts on an average open day at scale 1
    mix: tuple[tuple[str, float], ...]  # category multipliers: the neighbourhood's taste
    summer_break: bool = False  # closed two weeks in August (congés annuels)


SHOPS: tuple[_Shop, ...] = (
    _Shop("LYO-01", "PanPan Croix-Rousse", "Lyon", date(2011, 3, 1), (390, 1170, 420, 810),
          (0.0, 0.92, 0.92, 0.95, 1.05, 1.30, 1.15), 125.0,
          (("pain", 1.2), ("pâtisserie", 1.1))),
    _Shop("LYO-02", "PanPan Part-Dieu", "Lyon", date(2015, 9, 15), (390, 1200, 450, 810),
          (1.05, 1.05, 1.02, 1.05, 1.08, 0.95, 0.70), 150.0,
          (("snacking", 1.8), ("boisson", 1.5), ("pain", 0.8))),
    _Shop("VIL-01", "PanPan Villeurbanne", "Villeurbanne", date(2019, 5, 2),
          (420, 1170, 420, 780), (0.92, 0.92, 0.95, 0.95, 1.05, 1.30, 1.10), 95.0,
          (("pain", 1.1), ("viennoiserie", 1.1)), summer_break=True),
)
SHOP_IDS = tuple(s.shop_id for s in SHOPS)
N_SHOPS = len(SHOPS)
ALL_CLOSED = ((12, 25), (1, 1), (5, 1))  # every shop shuts on these (month, day)

DELIVERY_PER_DAY = 24.0  # orders on an average day at scale 1
SLOT_FILL = 0.8
DELIVERY_SPLIT = np.array([0.0, 0.65, 0.35])  # which shop dispatches the orders
DELIVERY_DOW = np.array([1.0, 1.05, 1.05, 1.05, 1.15, 0.9, 0.8])
DELIVERY_WINDOWS = (((660, 840), (1050, 1170)), ((660, 840), (1050, 1170)), ((510, 780),))

# Intraday peaks (mean minute, sd, weight) for weekdays, Saturdays, Sundays/holidays.
STORE_PEAKS = (
    ((470, 45, 0.33), (750, 40, 0.28), (975, 40, 0.06), (1070, 55, 0.28)),
    ((580, 85, 0.55), (740, 45, 0.16), (975, 45, 0.06), (1035, 70, 0.18)),
    ((590, 75, 0.65), (730, 40, 0.28)),
)
DELIVERY_PEAKS = (
    ((740, 35, 0.6), (1120, 30, 0.4)),
    ((750, 40, 0.6), (1110, 35, 0.4)),
    ((600, 45, 0.6), (720, 30, 0.4)),
)

# Yearly shape (month, day, factor): August empties Lyon, December fills the shops.
SEASON = ((1, 15, 1.00), (2, 15, 0.97), (3, 15, 1.00), (4, 15, 1.02), (5, 15, 0.99),
          (6, 15, 1.00), (7, 10, 0.94), (7, 31, 0.80), (8, 15, 0.66), (8, 26, 0.74),
          (9, 4, 1.02), (10, 15, 1.03), (11, 15, 1.02), (12, 10, 1.10), (12, 28, 1.05))
DELIVERY_SEASON = ((1, 15, 1.10), (3, 15, 1.00), (6, 15, 0.95), (8, 15, 0.80), (9, 10, 1.0),
                   (11, 15, 1.10), (12, 15, 1.15))
SPECIAL_DAYS = {(12, 22): 1.15, (12, 23): 1.30, (12, 24): 1.60, (12, 31): 1.35}
YEARLY_GROWTH = 1.06
SIGNUPS_PER_WEEK = 18.0
CUSTOMERS_BEFORE = 1800.0  # loyalty sign-ups in the three years before the range
HOME_SHARE = np.array([0.42, 0.30, 0.28])


@dataclass(frozen=True)
class _Product:
    sku: str
    name: str
    category: str
    price: float  # EUR in 2025; other years follow the yearly price rise
    cost_ratio: float
    weight: float  # relative popularity in a basket
    extra_qty: float  # mean of (quantity - 1) on a line
    season: str = ""  # "galette" (January) or "buche" (10-24 December)


PRODUCTS: tuple[_Product, ...] = (
    _Product("PAI-001", "Baguette", "pain", 1.20, 0.26, 30.0, 0.45),
    _Product("PAI-002", "Baguette tradition", "pain", 1.40, 0.27, 26.0, 0.40),
    _Product("PAI-003", "Pain de campagne", "pain", 3.90, 0.28, 6.0, 0.05),
    _Product("PAI-004", "Pain complet", "pain", 3.60, 0.28, 3.0, 0.05),
    _Product("PAI-005", "Pain aux céréales", "pain", 4.20, 0.30, 4.0, 0.05),
    _Product("PAI-006", "Pain de seigle", "pain", 4.10, 0.30, 2.0, 0.03),
    _Product("PAI-007", "Fougasse aux olives", "pain", 3.80, 0.32, 2.5, 0.05),
    _Product("PAI-008", "Pain de mie", "pain", 3.20, 0.29, 2.5, 0.03),
    _Product("PAI-009", "Ficelle", "pain", 0.95, 0.25, 3.0, 0.30),
    _Product("PAI-010", "Miche au levain", "pain", 5.50, 0.30, 3.0, 0.02),
    _Product("VIE-001", "Croissant", "viennoiserie", 1.30, 0.32, 18.0, 1.10),
    _Product("VIE-002", "Pain au chocolat", "viennoiserie", 1.45, 0.33, 18.0, 1.10),
    _Product("VIE-003", "Pain aux raisins", "viennoiserie", 1.70, 0.33, 5.0, 0.40),
    _Product("VIE-004", "Chausson aux pommes", "viennoiserie", 1.90, 0.34, 5.0, 0.40),
    _Product("VIE-005", "Brioche tressée", "viennoiserie", 4.50, 0.32, 2.0, 0.03),
    _Product("VIE-006", "Croissant aux amandes", "viennoiserie", 2.30, 0.35, 3.0, 0.30),
    _Product("VIE-007", "Brioche aux pralines", "viennoiserie", 4.20, 0.34, 2.5, 0.05),
    _Product("VIE-008", "Chouquettes (sachet de 10)", "viennoiserie", 2.50, 0.30, 3.0, 0.05),
    _Product("PAT-001", "Éclair au chocolat", "pâtisserie", 3.20, 0.36, 4.0, 0.40),
    _Product("PAT-002", "Éclair au café", "pâtisserie", 3.20, 0.36, 2.5, 0.30),
    _Product("PAT-003", "Tarte au citron meringuée", "pâtisserie", 3.90, 0.37, 3.0, 0.30),
    _Product("PAT-004", "Tarte aux pralines", "pâtisserie", 3.90, 0.36, 3.0, 0.30),
    _Product("PAT-005", "Flan pâtissier", "pâtisserie", 2.90, 0.34, 4.0, 0.30),
    _Product("PAT-006", "Mille-feuille", "pâtisserie", 3.80, 0.38, 2.5, 0.30),
    _Product("PAT-007", "Paris-Brest", "pâtisserie", 4.20, 0.40, 1.5, 0.30),
    _Product("PAT-008", "Religieuse au café", "pâtisserie", 3.90, 0.38, 1.5, 0.20),
    _Product("PAT-009", "Macaron", "pâtisserie", 1.60, 0.40, 2.0, 2.50),
    _Product("PAT-010", "Tarte aux fraises", "pâtisserie", 4.20, 0.42, 2.5, 0.30),
    _Product("PAT-011", "Crème brûlée", "pâtisserie", 3.50, 0.35, 1.5, 0.30),
    _Product("SNA-001", "Sandwich jambon-beurre", "snacking", 4.90, 0.40, 6.0, 0.10),
    _Product("SNA-002", "Quiche lorraine", "snacking", 4.50, 0.38, 4.0, 0.10),
    _Product("SNA-003", "Croque-monsieur", "snacking", 4.80, 0.38, 3.0, 0.10),
    _Product("SNA-004", "Salade composée", "snacking", 7.50, 0.42, 2.0, 0.05),
    _Product("BOI-001", "Eau minérale 50 cl", "boisson", 1.50, 0.30, 4.0, 0.10),
    _Product("BOI-002", "Eau pétillante 50 cl", "boisson", 1.70, 0.32, 2.0, 0.10),
    _Product("BOI-003", "Jus d'orange 25 cl", "boisson", 3.20, 0.42, 2.0, 0.10),
    _Product("BOI-004", "Limonade artisanale 33 cl", "boisson", 2.80, 0.43, 2.0, 0.10),
    _Product("BOI-005", "Thé glacé pêche 33 cl", "boisson", 2.60, 0.44, 1.5, 0.10),
    _Product("EPI-001", "Madeleines (sachet de 6)", "épicerie", 3.90, 0.40, 1.5, 0.05),
    _Product("EPI-002", "Confiture d'abricot 250 g", "épicerie", 5.20, 0.45, 0.7, 0.02),
    _Product("SAI-001", "Galette des rois (6 parts)", "pâtisserie", 22.00, 0.33, 0.0, 0.05,
             "galette"),
    _Product("SAI-002", "Bûche de Noël (6 parts)", "pâtisserie", 28.00, 0.35, 0.0, 0.02,
             "buche"),
)
N_PRODUCTS = len(PRODUCTS)
SKUS = np.array([p.sku for p in PRODUCTS], dtype=object)
PRODUCT_NAMES = np.array([p.name for p in PRODUCTS], dtype=object)
PACKAGED = np.array([p.category in ("boisson", "épicerie") for p in PRODUCTS])
GALETTE = next(i for i, p in enumerate(PRODUCTS) if p.season == "galette")
BUCHE = next(i for i, p in enumerate(PRODUCTS) if p.season == "buche")
CASE = 6  # packaged goods are ordered by the case
PRICE_YEAR = 2025
PRICE_RISE = 1.035
# Basket mix by time of day (morning, lunch, afternoon) and for delivery orders.
BUCKET_MIX = {
    "pain": (1.0, 0.8, 1.2, 0.4),
    "viennoiserie": (1.6, 0.4, 0.5, 1.2),
    "pâtisserie": (0.2, 0.8, 1.3, 1.4),
    "snacking": (0.1, 2.5, 0.3, 1.6),
    "boisson": (0.3, 1.6, 0.6, 1.2),
    "épicerie": (0.3, 0.4, 0.6, 0.3),
}
# Products that can plausibly run out for days (a supplier or an oven problem), never baguettes.
STOCKOUT_CANDIDATES = ("PAI-006", "PAI-007", "VIE-006", "VIE-007", "PAT-002", "PAT-004",
                       "PAT-005", "SNA-002", "BOI-002", "BOI-003", "BOI-004", "EPI-001")
CAUSES = {
    ("drop", False): ("coupure de courant", "travaux de voirie", "dégât des eaux",
                      "panne du four"),
    ("spike", False): ("fête de quartier", "commande traiteur", "marché de producteurs",
                       "tournage dans la rue"),
    ("drop", True): ("panne de l'application de livraison", "grève des livreurs"),
    ("spike", True): ("commandes d'entreprises", "séminaire livré"),
}

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Jade", "Louise", "Zoé", "Emma", "Alice",
    "Hélène", "Amélie", "Élodie", "Sophie", "Julie", "Margaux", "Anaïs", "Clémence", "Noémie",
    "Mathilde", "Lucas", "Hugo", "Théo", "Louis", "Nathan", "Jules", "Raphaël", "Gabriel",
    "Arthur", "Maël", "Noé", "Léo", "Thomas", "Antoine", "Jérôme", "François", "Étienne",
    "Benoît", "Cédric", "Grégoire", "Mathéo", "Timothée", "Baptiste", "Quentin", "Rémi",
    "Sébastien", "Aurélien", "Karim", "Yasmine", "Mehdi", "Sofia", "Nadia", "Paul", "Marie",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont",
    "Lambert", "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau",
    "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu",
    "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "Benoît",
    "Brunet", "Gaillard", "Barbier", "Arnaud", "Giraud", "Mallet", "Chabert", "Pâris",
    "Besson", "Bouvier", "Ménard",
)
EMAIL_DOMAINS = ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr",
                 "yahoo.fr", "wanadoo.fr", "outlook.fr")


# ---------------------------------------------------------------------------------------------
# Ground truth


@dataclass(frozen=True)
class Anomaly:
    """A planted traffic event on one day for one shop (both channels) or the delivery channel."""

    date: date
    shop_id: str  # a shop id, or "delivery" for the whole delivery channel
    kind: str  # "drop" | "spike"
    factor: float  # expected revenue multiplier that day
    cause: str


@dataclass(frozen=True)
class StockOut:
    """A planted span (inclusive) in which a shop sells none of a product and holds none."""

    shop_id: str
    sku: str
    start: date
    end: date


@dataclass(frozen=True)
class LowStock:
    """A planted short delivery at the end of the range: a packaged product's last delivery to
    a shop fell `short_by` units short, so its count is under the reorder point (but not zero)
    from `since` to the last day, when it is `on_hand`."""

    shop_id: str
    sku: str
    delivered_on: date
    short_by: int
    since: date
    on_hand: int
    reorder_point: int

    def to_dict(self) -> dict[str, Any]:
        return {"shop_id": self.shop_id, "sku": self.sku,
                "delivered_on": self.delivered_on.isoformat(), "short_by": self.short_by,
                "since": self.since.isoformat(), "on_hand": self.on_hand,
                "reorder_point": self.reorder_point}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LowStock:
        return cls(data["shop_id"], data["sku"], date.fromisoformat(data["delivered_on"]),
                   int(data["short_by"]), date.fromisoformat(data["since"]),
                   int(data["on_hand"]), int(data["reorder_point"]))


@dataclass(frozen=True)
class GroundTruth:
    """What was planted in the demo data: the answer key that detectors are scored against."""

    start: date
    end: date
    days: int
    seed: int
    scale: float
    anomalies: tuple[Anomaly, ...]
    stockouts: tuple[StockOut, ...]
    closed_days: dict[str, tuple[date, ...]]
    duplicate_customers: tuple[tuple[str, str], ...]  # (original, later re-registration)
    counts: dict[str, int]
    low_stock: tuple[LowStock, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {"start": self.start.isoformat(), "end": self.end.isoformat(),
                       "days": self.days, "seed": self.seed, "scale": self.scale,
                       "timezone": TIMEZONE, "currency": CURRENCY},
            "anomalies": [{"date": a.date.isoformat(), "shop_id": a.shop_id, "kind": a.kind,
                           "factor": a.factor, "cause": a.cause} for a in self.anomalies],
            "stockouts": [{"shop_id": s.shop_id, "sku": s.sku, "start": s.start.isoformat(),
                           "end": s.end.isoformat()} for s in self.stockouts],
            "low_stock": [low.to_dict() for low in self.low_stock],
            "closed_days": {shop: [d.isoformat() for d in days]
                            for shop, days in self.closed_days.items()},
            "duplicate_customers": [list(pair) for pair in self.duplicate_customers],
            "counts": dict(self.counts),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        params = data["params"]
        return cls(
            start=date.fromisoformat(params["start"]),
            end=date.fromisoformat(params["end"]),
            days=int(params["days"]),
            seed=int(params["seed"]),
            scale=float(params["scale"]),
            anomalies=tuple(
                Anomaly(date.fromisoformat(a["date"]), a["shop_id"], a["kind"],
                        float(a["factor"]), a["cause"]) for a in data["anomalies"]),
            stockouts=tuple(
                StockOut(s["shop_id"], s["sku"], date.fromisoformat(s["start"]),
                         date.fromisoformat(s["end"])) for s in data["stockouts"]),
            closed_days={shop: tuple(date.fromisoformat(d) for d in days)
                         for shop, days in data["closed_days"].items()},
            duplicate_customers=tuple(
                (pair[0], pair[1]) for pair in data["duplicate_customers"]),
            counts={k: int(v) for k, v in data["counts"].items()},
            # Absent from data generated before short deliveries were planted.
            low_stock=tuple(LowStock.from_dict(low) for low in data.get("low_stock", ())),
        )

    @classmethod
    def from_json(cls, path: Path) -> GroundTruth:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------
# Calendar


@dataclass(frozen=True)
class _Calendar:
    start: date
    dates: np.ndarray  # datetime64[D]
    dow: np.ndarray  # Monday = 0
    month: np.ndarray
    dom: np.ndarray
    doy: np.ndarray
    year: np.ndarray
    holiday: np.ndarray
    closed: np.ndarray  # (days, shops)
    daytype: np.ndarray  # (days, shops): 0 Mon-Fri, 1 Saturday, 2 Sunday or public holiday

    @property
    def n(self) -> int:
        return len(self.dates)

    @property
    def open(self) -> np.ndarray:
        return ~self.closed

    def day(self, i: int) -> date:
        return self.start + timedelta(days=int(i))


def _calendar(dates: np.ndarray) -> _Calendar:
    """Weekday, holiday and opening facts for an array of datetime64[D] days."""
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    dow = (dates.astype(int) + 3) % 7
    years = range(int(year.min()), int(year.max()) + 1)
    public = np.array(sorted(holidays.France(years=years)), dtype="datetime64[D]")
    holiday = np.isin(dates, public)
    all_closed = np.zeros(len(dates), dtype=bool)
    for m, d in ALL_CLOSED:
        all_closed |= (month == m) & (dom == d)
    breaks = []
    for y in years:
        first = date(y, 8, 4)
        first += timedelta(days=(7 - first.weekday()) % 7)
        breaks.extend(first + timedelta(days=k) for k in range(14))
    summer = np.isin(dates, np.array(breaks, dtype="datetime64[D]"))
    closed = np.zeros((len(dates), N_SHOPS), dtype=bool)
    for s, shop in enumerate(SHOPS):
        closed[:, s] = all_closed | (np.array(shop.dow)[dow] == 0)
        if shop.summer_break:
            closed[:, s] |= summer
    weekly = np.where(dow == 6, 2, np.where(dow == 5, 1, 0))
    daytype = np.repeat(np.where(holiday, 2, weekly)[:, None], N_SHOPS, axis=1)
    start = date.fromisoformat(str(dates[0])) if len(dates) else date.today()
    return _Calendar(start, dates, dow, month, dom, doy, year, holiday, closed, daytype)


def _season(cal: _Calendar, anchors: tuple[tuple[int, int, float], ...]) -> np.ndarray:
    points = [(date(2023, m, d) - date(2023, 1, 1)).days for m, d, _ in anchors]
    return np.interp(cal.doy, points, [f for *_, f in anchors], period=365)


# ---------------------------------------------------------------------------------------------
# Planted events


@dataclass(frozen=True)
class _Events:
    anomalies: tuple[Anomaly, ...]
    stockouts: tuple[StockOut, ...]
    shop_factor: np.ndarray  # (days, shops)
    delivery_factor: np.ndarray  # (days,)
    stockout_mask: np.ndarray  # (days, shops, products)


def _plan_events(rng: np.random.Generator, cal: _Calendar, scale: float) -> _Events:
    """Anomalies and stock-outs spread over the range, after a warm-up detectors can learn on."""
    n = cal.n
    warm = min(60, n // 3)
    calm = ~cal.holiday & ~(((cal.month == 12) & (cal.dom >= 15)) |
                            ((cal.month == 1) & (cal.dom <= 10)))
    targets = list(range(N_SHOPS))
    if DELIVERY_PER_DAY * scale >= 6:  # below that, a day of deliveries is mostly noise
        targets.append(N_SHOPS)
    n_anomalies = 0 if n < 30 else min(10, max(1, int(n / 80 + 0.5)))
    first = str(rng.choice(["drop", "spike"]))
    other = "spike" if first == "drop" else "drop"
    kinds = rng.permutation([first if i % 2 == 0 else other for i in range(n_anomalies)])
    edges = np.linspace(warm, n, n_anomalies + 1).astype(int)
    shop_factor = np.ones((n, N_SHOPS))
    delivery_factor = np.ones(n)
    anomalies: list[Anomaly] = []
    taken: list[tuple[int, int]] = []
    for k, kind in enumerate(kinds):
        for target in rng.permutation(targets):
            is_delivery = target == N_SHOPS
            ok = calm & (cal.open[:, 1] if is_delivery else cal.open[:, target])
            days = np.flatnonzero(ok[edges[k]:edges[k + 1]]) + edges[k]
            if len(days) == 0:
                continue
            i = int(rng.choice(days))
            # A day of deliveries is a few dozen orders: it needs a stronger event to stand out.
            low, high = {("drop", False): (0.3, 0.5), ("spike", False): (1.8, 2.5),
                         ("drop", True): (0.3, 0.4), ("spike", True): (2.0, 2.5)}[
                (str(kind), bool(is_delivery))]
            factor = round(float(rng.uniform(low, high)), 2)
            cause = str(rng.choice(CAUSES[(str(kind), bool(is_delivery))]))
            if is_delivery:
                delivery_factor[i] = factor
            else:
                shop_factor[i, target] = factor
            taken.append((i, int(target)))
            anomalies.append(Anomaly(cal.day(i), DELIVERY if is_delivery else SHOP_IDS[target],
                                     str(kind), factor, cause))
            break

    mask = np.zeros((n, N_SHOPS, N_PRODUCTS), dtype=bool)
    stockouts: list[StockOut] = []
    n_stockouts = 0 if n < 30 else min(8, max(1, int(n / 110 + 0.5)))
    edges = np.linspace(warm, n, n_stockouts + 1).astype(int)
    sku_index = {p.sku: i for i, p in enumerate(PRODUCTS)}
    for k in range(n_stockouts):
        for _attempt in range(50):
            shop = int(rng.integers(N_SHOPS))
            sku = str(rng.choice(STOCKOUT_CANDIDATES))
            length = int(rng.integers(2, 7))
            last_start = min(edges[k + 1], n - length)
            if last_start < edges[k]:
                break
            i = int(rng.integers(edges[k], last_start + 1))
            span = slice(i, i + length)
            p = sku_index[sku]
            if cal.open[span, shop].sum() < 2 or mask[span, shop, p].any():
                continue
            if any(i <= day < i + length and t == shop for day, t in taken):
                continue
            mask[span, shop, p] = True
            stockouts.append(StockOut(SHOP_IDS[shop], sku, cal.day(i), cal.day(i + length - 1)))
            break
    return _Events(tuple(sorted(anomalies, key=lambda a: a.date)),
                   tuple(sorted(stockouts, key=lambda s: (s.start, s.shop_id))),
                   shop_factor, delivery_factor, mask)


# ---------------------------------------------------------------------------------------------
# Traffic


@dataclass(frozen=True)
class _Traffic:
    shop: np.ndarray  # (days, shops): traffic multiplier, 0 when closed
    delivery: np.ndarray  # (days, shops): expected delivery orders dispatched by each shop


def _traffic(rng: np.random.Generator, cal: _Calendar, events: _Events,
             scale: float) -> _Traffic:
    n = cal.n
    trend = YEARLY_GROWTH ** ((np.arange(n) - (n - 1) / 2) / 365)
    special = np.ones(n)
    for (m, d), f in SPECIAL_DAYS.items():
        special[(cal.month == m) & (cal.dom == d)] = f
    weather = np.zeros(n)  # shared: fine days bring people out, bad days bring delivery orders
    shocks = rng.normal(0.0, 0.05, n)
    for i in range(1, n):
        weather[i] = 0.6 * weather[i - 1] + shocks[i]
    common = _season(cal, SEASON) * trend * special * np.exp(weather)
    noise = np.exp(rng.normal(0.0, 0.06, (n, N_SHOPS)))
    noise[events.shop_factor != 1] = 1.0
    dow_factors = np.array([s.dow for s in SHOPS]).T  # (7, shops)
    effective_dow = np.where(cal.holiday, 6, cal.dow)
    shop = dow_factors[effective_dow] * common[:, None] * noise * events.shop_factor
    shop[cal.closed] = 0.0

    delivery_noise = np.exp(rng.normal(0.0, 0.05, n))
    delivery_noise[events.delivery_factor != 1] = 1.0
    total = (DELIVERY_PER_DAY * scale * DELIVERY_DOW[effective_dow]
             * _season(cal, DELIVERY_SEASON) * trend * np.sqrt(special) * np.exp(-0.5 * weather)
             * delivery_noise * events.delivery_factor)
    split = DELIVERY_SPLIT[None, :] * cal.open
    weights = split.sum(axis=1, keepdims=True)
    split = np.divide(split, weights, out=np.zeros_like(split), where=weights > 0)
    return _Traffic(shop, total[:, None] * split * events.shop_factor)


def _profiles() -> np.ndarray:
    """Cumulative distribution of the sale minute per (shop, day type, channel)."""
    minutes = np.arange(1440) + 0.5
    cdf = np.zeros((N_SHOPS, 3, 2, 1440))
    for s, shop in enumerate(SHOPS):
        for daytype in range(3):
            opens, closes = shop.hours[:2] if daytype < 2 else shop.hours[2:]
            inside = (minutes >= opens) & (minutes < closes)
            for channel, peaks in enumerate((STORE_PEAKS[daytype], DELIVERY_PEAKS[daytype])):
                density = np.full(1440, 0.18 / (closes - opens))
                for mean, sd, weight in peaks:
                    density += weight * np.exp(-0.5 * ((minutes - mean) / sd) ** 2) / sd
                window = inside.copy()
                if channel == 1:
                    window &= np.any([(minutes >= a) & (minutes < b)
                                      for a, b in DELIVERY_WINDOWS[daytype]], axis=0)
                density *= window
                cdf[s, daytype, channel] = np.cumsum(density) / density.sum()
    return cdf


def _closing_minute(shop: np.ndarray, daytype: np.ndarray) -> np.ndarray:
    hours = np.array([s.hours for s in SHOPS])
    return np.where(daytype == 2, hours[shop, 3], hours[shop, 1])


def _sku_cdf() -> np.ndarray:
    """Cumulative basket mix per (shop, bucket): morning, lunch, afternoon, delivery."""
    cdf = np.zeros((N_SHOPS, 4, N_PRODUCTS))
    for s, shop in enumerate(SHOPS):
        mix = dict(shop.mix)
        for bucket in range(4):
            w = np.array([p.weight * BUCKET_MIX[p.category][bucket] * mix.get(p.category, 1.0)
                          for p in PRODUCTS])
            cdf[s, bucket] = np.cumsum(w) / w.sum()
    return cdf


def _seasonal_share(cal: _Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Share of lines that are a galette (January, peaking around Epiphany) or a bûche."""
    jan = cal.month == 1
    galette = np.where(jan, np.interp(cal.dom, [1, 4, 12, 20, 31], [0.01, 0.035, 0.03,
                                                                      0.015, 0.006]), 0.0)
    galette = np.where(jan & (cal.dow >= 5) & (cal.dom <= 14), galette * 1.5, galette)
    xmas = (cal.month == 12) & (cal.dom >= 10) & (cal.dom <= 24)
    buche = np.where(xmas, np.interp(cal.dom, [10, 20, 23, 24], [0.003, 0.015, 0.04, 0.05]),
                     0.0)
    return galette, buche


def _price_table(years: range) -> dict[int, np.ndarray]:
    """Prices in cents per year: one rise of ~3.5% every 1 January, rounded to 5 cents."""
    def round5(x: np.ndarray) -> np.ndarray:
        return (np.round(x / 5) * 5).astype(np.int64)

    base = np.array([round(p.price * 100) for p in PRODUCTS], dtype=np.int64)
    table = {PRICE_YEAR: base}
    cur = base
    for y in range(PRICE_YEAR + 1, max(years.stop, PRICE_YEAR + 1)):
        cur = np.maximum(cur + 5, round5(cur * PRICE_RISE))
        table[y] = cur
    cur = base
    for y in range(PRICE_YEAR - 1, min(years.start, PRICE_YEAR) - 1, -1):
        cur = np.minimum(cur - 5, round5(cur / PRICE_RISE))
        table[y] = cur
    return table


# ---------------------------------------------------------------------------------------------
# Customers


@dataclass(frozen=True)
class _Customers:
    ids: np.ndarray  # object strings, plus "" at index -1 for anonymous buyers
    signup: np.ndarray  # day index (negative: before the range)
    churn: np.ndarray  # last day index they still buy
    home: np.ndarray
    rate: np.ndarray  # visits per day
    delivery_weight: np.ndarray
    rows: list[tuple[str, ...]]
    duplicates: tuple[tuple[str, str], ...]
    before: int


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", "").replace("'", "")


def _messy(email: str, r: float) -> str:
    """How people really type their address at the till."""
    if r < 0.04:
        return email.upper()
    if r < 0.07:
        return f" {email} "
    if r < 0.09:
        return email[:1].upper() + email[1:]
    if r < 0.11:
        return ""
    return email


def _customers(rng: np.random.Generator, cal: _Calendar, traffic: _Traffic,
               scale: float) -> _Customers:
    n_before = int(rng.poisson(CUSTOMERS_BEFORE * scale))
    before = rng.integers(-3 * 365, 0, n_before)
    home_before = rng.choice(N_SHOPS, n_before, p=HOME_SHARE)
    for _ in range(3):  # nobody signs up on a day their shop is shut
        days = np.datetime64(cal.start) + before
        shut = _calendar(days).closed[np.arange(n_before), home_before] if n_before else []
        before = np.minimum(before + np.asarray(shut, dtype=int), -1)
    acquisition = np.interp(cal.month, [1, 2, 6, 8, 9, 10, 12], [1.3, 1.1, 1.0, 0.5, 1.3, 1.1,
                                                                 1.0])
    lam = SIGNUPS_PER_WEEK / 7 * scale * acquisition[:, None] * HOME_SHARE * traffic.shop
    joins = rng.poisson(lam)
    signup = np.concatenate([before, np.repeat(np.arange(cal.n), joins.sum(axis=1))])
    home = np.concatenate([home_before, np.nonzero(joins)[1].repeat(joins[joins > 0])])
    count = len(signup)
    order = np.lexsort((rng.random(count), signup))
    signup, home = signup[order], home[order]
    short = rng.random(count) < 0.3  # many try the card once or twice and drift away
    life = np.where(short, rng.exponential(60, count), rng.exponential(900, count))
    churn = signup + np.ceil(life).astype(np.int64)
    rate = np.clip(rng.lognormal(np.log(0.9), 0.7, count), 0.1, 6.0) / 7
    delivery_weight = np.where(rng.random(count) < 0.2, 1.0, 0.05) * rate
    ids = [f"C{i + 1:06d}" for i in range(count)]

    first = rng.integers(len(FIRST_NAMES), size=count)
    last = rng.integers(len(LAST_NAMES), size=count)
    pattern = rng.integers(4, size=count)
    suffix = rng.integers(1, 99, size=count)
    domain = rng.integers(len(EMAIL_DOMAINS), size=count)
    mess = rng.random(count)
    opt_in = rng.random(count) < 0.68
    mobile = rng.choice(["6", "7"], size=count, p=[0.8, 0.2])
    digits = rng.integers(0, 100, size=(count, 4))
    no_phone = rng.random(count) < 0.03
    duplicate = (signup >= 0) & (rng.random(count) < 0.01)
    pick = rng.random(count)

    seen: set[str] = set()
    rows: list[tuple[str, ...]] = []
    clean: list[str] = []
    duplicates: list[tuple[str, str]] = []
    for i in range(count):
        fn, ln = FIRST_NAMES[first[i]], LAST_NAMES[last[i]]
        f, lname = _ascii(fn), _ascii(ln)
        local = (f"{f}.{lname}", f"{f}{lname}", f"{f[0]}.{lname}",
                 f"{f}.{lname}{suffix[i]:02d}")[pattern[i]]
        email, n = f"{local}@{EMAIL_DOMAINS[domain[i]]}", 1
        while email in seen:
            n += 1
            email = f"{local}{n}@{EMAIL_DOMAINS[domain[i]]}"
        phone = "" if no_phone[i] else (
            f"+33 {mobile[i]} " + " ".join(f"{d:02d}" for d in digits[i]))
        shown = _messy(email, mess[i])
        if duplicate[i]:  # a lost card, a new registration: same person, typed differently
            alive = np.flatnonzero((signup[:i] < signup[i]) & (churn[:i] >= signup[i]))
            if len(alive):
                j = int(alive[int(pick[i] * len(alive))])
                _, fn, ln, _, phone_j, *_ = rows[j]
                email = clean[j]
                shown = email.upper() if mess[i] < 0.5 else f"{email} "
                phone = (phone_j.replace("+33 ", "0") if phone_j else phone)
                churn[j] = signup[i] - 1
                home[i] = home[j]
                duplicates.append((ids[j], ids[i]))
        seen.add(email)
        clean.append(email)
        rows.append((ids[i], fn, ln, shown, phone, cal.day(int(signup[i])).isoformat(),
                     "true" if opt_in[i] else "false"))
    return _Customers(np.array([*ids, ""], dtype=object), signup, churn, home, rate,
                      delivery_weight, rows, tuple(duplicates), n_before)


# ---------------------------------------------------------------------------------------------
# Sales


@dataclass
class _Lines:
    """Receipt lines of one month (or pending refunds), one array per column."""

    day: np.ndarray
    minute: np.ndarray
    shop: np.ndarray
    channel: np.ndarray
    customer: np.ndarray
    receipt_no: np.ndarray  # object strings
    seq: np.ndarray  # ordering key among receipts of the same minute
    line_no: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    price: np.ndarray  # cents
    discount: np.ndarray  # cents
    is_return: np.ndarray

    def take(self, index: np.ndarray) -> _Lines:
        return _Lines(**{k: v[index] for k, v in vars(self).items()})

    @staticmethod
    def concat(parts: list[_Lines]) -> _Lines:
        return _Lines(**{k: np.concatenate([vars(p)[k] for p in parts])
                         for k in vars(parts[0])})

    def __len__(self) -> int:
        return len(self.day)


@dataclass(frozen=True)
class _Context:
    cal: _Calendar
    traffic: _Traffic
    events: _Events
    customers: _Customers
    scale: float
    time_cdf: np.ndarray
    sku_cdf: np.ndarray
    galette: np.ndarray
    buche: np.ndarray
    prices: np.ndarray  # (days, products) cents
    extra_qty: np.ndarray
    fresh: np.ndarray
    ymd: list[str]


def _receipts(rng: np.random.Generator, ctx: _Context, days: np.ndarray) -> dict[str, np.ndarray]:
    """Receipt headers of some days: walk-ins, loyalty visits and delivery orders."""
    cal, cust = ctx.cal, ctx.customers
    walk_in = np.array([s.walk_in for s in SHOPS]) * ctx.scale * ctx.traffic.shop[days]
    counts = rng.poisson(walk_in)
    anon_day = np.repeat(np.repeat(days, N_SHOPS), counts.ravel())
    anon_shop = np.repeat(np.tile(np.arange(N_SHOPS), len(days)), counts.ravel())

    sel = np.flatnonzero((cust.signup <= days[-1]) & (cust.churn >= days[0]))
    signup, churn, home = cust.signup[sel, None], cust.churn[sel, None], cust.home[sel]
    active = (signup < days[None, :]) & (churn >= days[None, :])
    lam = cust.rate[sel, None] * ctx.traffic.shop[days][:, home].T * active
    visits = rng.poisson(lam) + ((signup == days[None, :]) & cal.open[days][:, home].T)
    ci, dj = np.nonzero(visits)
    reps = visits[ci, dj]
    loyal_cust = np.repeat(sel[ci], reps)
    loyal_day = np.repeat(days[dj], reps)

    # Orders fill booked courier slots (most of them): steadier than walk-ins.
    expected = ctx.traffic.delivery[days]
    slots = (expected / SLOT_FILL + rng.random(expected.shape)).astype(np.int64)
    orders = rng.binomial(slots, SLOT_FILL)
    del_day = np.repeat(np.repeat(days, N_SHOPS), orders.ravel())
    del_shop = np.repeat(np.tile(np.arange(N_SHOPS), len(days)), orders.ravel())
    del_cust = np.full(len(del_day), -1)
    known = rng.random(len(del_day)) < 0.55
    weights = cust.delivery_weight[sel]
    if known.any() and weights.sum() > 0:
        chosen = rng.choice(sel, size=int(known.sum()), p=weights / weights.sum())
        alive = (cust.signup[chosen] <= del_day[known]) & (cust.churn[chosen] >= del_day[known])
        del_cust[known] = np.where(alive, chosen, -1)

    return {
        "day": np.concatenate([anon_day, loyal_day, del_day]),
        "shop": np.concatenate([anon_shop, cust.home[loyal_cust], del_shop]),
        "channel": np.concatenate([np.zeros(len(anon_day) + len(loyal_day), dtype=int),
                                   np.ones(len(del_day), dtype=int)]),
        "customer": np.concatenate([np.full(len(anon_day), -1), loyal_cust, del_cust]),
    }


def _sample_minutes(rng: np.random.Generator, cdf: np.ndarray, shop: np.ndarray,
                    daytype: np.ndarray, channel: np.ndarray) -> np.ndarray:
    u = rng.random(len(shop))
    minute = np.zeros(len(shop), dtype=np.int64)
    combo = (shop * 3 + daytype) * 2 + channel
    flat = cdf.reshape(-1, 1440)
    for c in np.unique(combo):
        m = combo == c
        minute[m] = np.searchsorted(flat[c], u[m], side="right")
    return np.minimum(minute, 1439)


def _month_sales(rng: np.random.Generator, ctx: _Context, days: np.ndarray) -> _Lines:
    """All sale lines of the given days, numbered like the POS numbers its receipts."""
    cal = ctx.cal
    r = _receipts(rng, ctx, days)
    shop, channel, day = r["shop"], r["channel"], r["day"]
    daytype = cal.daytype[day, shop]
    minute = _sample_minutes(rng, ctx.time_cdf, shop, daytype, channel)

    busy_morning = (daytype > 0) & (minute < 690)
    n_lines = np.where(
        channel == 1,
        3 + np.minimum(rng.poisson(2.4, len(day)), 9),
        1 + np.minimum(rng.poisson(0.6 + 0.35 * busy_morning), 7),
    )
    rec = np.repeat(np.arange(len(day)), n_lines)
    bucket = np.where(channel == 1, 3, np.digitize(minute, [660, 840]))[rec]
    combo = shop[rec] * 4 + bucket
    u = rng.random(len(rec))
    sku = np.zeros(len(rec), dtype=np.int64)
    flat = ctx.sku_cdf.reshape(-1, N_PRODUCTS)
    for c in np.unique(combo):
        m = combo == c
        sku[m] = np.searchsorted(flat[c], u[m], side="right")
    sku = np.minimum(sku, N_PRODUCTS - 1)
    line_day = day[rec]
    u = rng.random(len(rec))
    g, b = ctx.galette[line_day], ctx.buche[line_day]
    sku = np.where(u < g, GALETTE, np.where(u < g + b, BUCHE, sku))
    delivery_line = channel[rec] == 1
    quantity = 1 + rng.poisson(ctx.extra_qty[sku] * np.where(delivery_line, 2.5, 1.0))
    quantity = np.minimum(quantity, np.where(delivery_line, 40, 12))

    keep = ~ctx.events.stockout_mask[line_day, shop[rec], sku]
    rec, sku, quantity = rec[keep], sku[keep], quantity[keep]
    # The same product twice in a basket is one line with the summed quantity.
    key = rec * N_PRODUCTS + sku
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, weights=quantity).astype(np.int64)
    order = np.argsort(first, kind="stable")
    uniq, quantity = uniq[order], summed[order]
    rec, sku = uniq // N_PRODUCTS, uniq % N_PRODUCTS

    # Receipts left without lines (everything out of stock) never happened.
    has_lines = np.bincount(rec, minlength=len(day)) > 0
    new_index = np.cumsum(has_lines) - 1
    rec = new_index[rec]
    day, shop, channel = day[has_lines], shop[has_lines], channel[has_lines]
    minute, customer, daytype = minute[has_lines], r["customer"][has_lines], daytype[has_lines]
    n_rec = len(day)

    order = np.lexsort((rng.random(n_rec), minute, shop, day))
    ranked = np.empty(n_rec, dtype=np.int64)
    ranked[order] = np.arange(n_rec)
    group_start = np.r_[True, (np.diff(day[order]) != 0) | (np.diff(shop[order]) != 0)]
    start_pos = np.maximum.accumulate(np.where(group_start, np.arange(n_rec), 0))
    seq = np.empty(n_rec, dtype=np.int64)
    seq[order] = np.arange(n_rec) - start_pos + 1
    receipt_no = np.array([f"{SHOP_IDS[s]}-{ctx.ymd[d]}-{q:04d}" for s, d, q in
                           zip(shop.tolist(), day.tolist(), seq.tolist(), strict=True)],
                          dtype=object)

    starts = np.r_[0, np.flatnonzero(np.diff(rec)) + 1]
    line_no = np.arange(len(rec)) - np.repeat(starts, np.diff(np.r_[starts, len(rec)])) + 1
    line_day = day[rec]
    price = ctx.prices[line_day, sku]
    gross = quantity * price
    # Anti-gaspi: fresh goods at -30% in the last 45 minutes before closing.
    late = (channel[rec] == 0) & (minute[rec] >= _closing_minute(shop, daytype)[rec] - 45)
    discount = np.where(late & ctx.fresh[sku] & (rng.random(len(rec)) < 0.5),
                        (gross * 3 + 5) // 10, 0)
    # Loyalty card: now and then one item of the basket is free.
    reward = (channel == 0) & (customer >= 0) & (rng.random(n_rec) < 0.06)
    free = reward[rec] & (line_no == 1)
    discount = np.where(free, np.maximum(discount, price), discount)

    return _Lines(day=line_day, minute=minute[rec], shop=shop[rec], channel=channel[rec],
                  customer=customer[rec], receipt_no=receipt_no[rec], seq=ranked[rec],
                  line_no=line_no, sku=sku, quantity=quantity, price=price,
                  discount=discount.astype(np.int64),
                  is_return=np.zeros(len(rec), dtype=bool))


def _refunds(rng: np.random.Generator, ctx: _Context, sales: _Lines) -> _Lines:
    """~0.3% of receipts come back (same day or a few days later) for one of their lines."""
    cal = ctx.cal
    starts = np.flatnonzero(sales.line_no == 1)
    n = int(rng.binomial(len(starts), 0.003))
    if n == 0:
        return sales.take(np.zeros(0, dtype=np.int64))
    chosen = rng.choice(len(starts), size=n, replace=False)
    ends = np.r_[starts[1:], len(sales)]
    line = starts[chosen] + (rng.random(n) * (ends - starts)[chosen]).astype(np.int64)
    orig = sales.take(line)
    shop = orig.shop
    offset = rng.choice([0, 0, 0, 1, 1, 2, 3], size=n)
    minute = orig.minute + rng.integers(15, 180, size=n)
    day = np.minimum(orig.day + offset, cal.n - 1)
    late = (offset == 0) & (minute >= _closing_minute(shop, cal.daytype[day, shop]))
    offset = np.where(late, 1, offset)
    day = orig.day + offset
    for _ in range(10):  # the next day the shop is open
        shut = (day < cal.n) & cal.closed[np.minimum(day, cal.n - 1), shop]
        day = day + shut
    safe_day = np.minimum(day, cal.n - 1)
    valid = (day < cal.n) & ~cal.closed[safe_day, shop]
    valid &= ~ctx.events.stockout_mask[safe_day, shop, orig.sku]
    redraw = _sample_minutes(rng, ctx.time_cdf, shop, cal.daytype[safe_day, shop],
                             np.zeros(n, dtype=np.int64))
    minute = np.where(day == orig.day, minute, redraw)
    back = np.where(rng.random(n) < 0.6, orig.quantity,
                    1 + (rng.random(n) * orig.quantity).astype(np.int64))
    discount = (orig.discount * back * 2 + orig.quantity) // (2 * orig.quantity)
    valid &= back * orig.price - discount > 0  # a free item is not refunded
    refunds = _Lines(day=day, minute=minute, shop=shop, channel=orig.channel,
                     customer=orig.customer,
                     receipt_no=np.array([f"RET-{r}" for r in orig.receipt_no], dtype=object),
                     seq=np.arange(n), line_no=np.ones(n, dtype=np.int64), sku=orig.sku,
                     quantity=-back, price=orig.price, discount=-discount,
                     is_return=np.ones(n, dtype=bool))
    return refunds.take(np.flatnonzero(valid))


def _labels(values: np.ndarray, fmt: Callable[[int], str]) -> list[str]:
    """Format each distinct value once: fast for big columns with few distinct values."""
    uniq, inverse = np.unique(values, return_inverse=True)
    labels = np.array([fmt(v) for v in uniq.tolist()], dtype=object)
    return labels[inverse].tolist()


def _cents(v: int) -> str:
    sign = "-" if v < 0 else ""
    return f"{sign}{abs(v) // 100},{abs(v) % 100:02d}"


def _sales_csv(ctx: _Context, lines: _Lines) -> str:
    order = np.lexsort((lines.line_no, lines.seq, lines.is_return, lines.shop, lines.minute,
                        lines.day))
    x = lines.take(order)
    dmy = [str(d) for d in ctx.cal.dates.tolist()]
    dmy = [f"{s[8:10]}/{s[5:7]}/{s[:4]}" for s in dmy]
    total = x.quantity * x.price - x.discount
    columns = [
        x.receipt_no.tolist(),
        _labels(x.day * 1440 + x.minute,
                lambda k: f"{dmy[k // 1440]} {k % 1440 // 60:02d}:{k % 60:02d}"),
        np.array(SHOP_IDS, dtype=object)[x.shop].tolist(),
        np.array(CHANNELS, dtype=object)[x.channel].tolist(),
        ctx.customers.ids[x.customer].tolist(),
        _labels(x.line_no, str),
        SKUS[x.sku].tolist(),
        PRODUCT_NAMES[x.sku].tolist(),
        _labels(x.quantity, str),
        _labels(x.price, _cents),
        _labels(x.discount, _cents),
        _labels(total, _cents),
    ]
    body = "\n".join(map(";".join, zip(*columns, strict=True)))
    return f"{SALES_HEADER}\n{body}\n" if len(x) else f"{SALES_HEADER}\n"


# ---------------------------------------------------------------------------------------------
# Stock


def _season_active(cal: _Calendar) -> np.ndarray:
    """(days, products): whether a product is on the shelves at all that day."""
    active = np.ones((cal.n, N_PRODUCTS), dtype=bool)
    active[:, GALETTE] = cal.month == 1
    active[:, BUCHE] = (cal.month == 12) & (cal.dom >= 10) & (cal.dom <= 24)
    return active


def _stock(rng: np.random.Generator, cal: _Calendar, sold: np.ndarray,
           events: _Events) -> tuple[np.ndarray, np.ndarray, tuple[LowStock, ...]]:
    """End-of-day stock per (day, shop, product), each product's reorder point, and the planted
    short delivery (see _short_delivery).

    Fresh goods are baked each morning to the day's plan (sales plus a margin), so they end the
    day above the reorder point unless a stock-out was planted. Packaged goods arrive every
    Tuesday, by the case, for the coming week's sales plus a random margin, so they drift down
    during the week and now and then cross their reorder point. The last week goes on after
    the range: its delivery is sized on the week before (when that sold more than the days in
    range), else the shelves would look nearly empty on the last days.
    """
    active = _season_active(cal)
    on_shelf = cal.open[:, :, None] & active[:, None, :]
    mean_daily = (sold * on_shelf).sum(axis=(0, 1)) / np.maximum(on_shelf.sum(axis=(0, 1)), 1)
    reorder = np.where(PACKAGED, np.maximum(3, np.round(1.6 * mean_daily)),
                       np.maximum(2, np.round(0.1 * mean_daily))).astype(np.int64)

    leftover = np.round(sold * rng.uniform(0.03, 0.25, sold.shape)).astype(np.int64)
    fresh = reorder + 1 + leftover + rng.integers(0, 3, sold.shape)
    week = (np.arange(cal.n) + (int(cal.dow[0]) - 1) % 7) // 7
    weekly = np.zeros((week[-1] + 1, N_SHOPS, N_PRODUCTS), dtype=np.int64)
    np.add.at(weekly, week, sold)
    if len(weekly) > 1 and (week == week[-1]).sum() < 7:
        weekly[-1] = np.maximum(weekly[-1], weekly[-2])
    wanted = weekly + np.ceil(weekly * rng.uniform(0.1, 0.7, weekly.shape)).astype(np.int64) + 1
    delivered = -(-wanted // CASE) * CASE
    packaged = np.zeros_like(sold)
    running = np.zeros((N_SHOPS, N_PRODUCTS), dtype=np.int64)
    for i in range(cal.n):
        running = sold[i] if i == 0 or week[i] != week[i - 1] else running + sold[i]
        packaged[i] = delivered[week[i]] - running
    on_hand = np.where(PACKAGED[None, None, :], packaged, fresh)
    on_hand[events.stockout_mask] = 0
    low_stock = _short_delivery(rng, cal, on_hand, reorder, week, events)
    return on_hand, reorder, low_stock


def _short_delivery(rng: np.random.Generator, cal: _Calendar, on_hand: np.ndarray,
                    reorder: np.ndarray, week: np.ndarray,
                    events: _Events) -> tuple[LowStock, ...]:
    """Plant the owner's low-stock story at the end of the range (from two weeks of data on).

    One packaged product at one shop open on the last day: its last delivery came some units
    short (whole cases when possible), so every count since that delivery is lower by as much,
    and the product runs under its reorder point on one of the last three days and stays
    there, above zero (zero is a stock-out), until the end. The count before stays at or above
    the reorder point, so the alert fires once, about this. Changes `on_hand` in place; drawn
    after everything else, so the rest of the data is the same as without it.
    """
    last = cal.n - 1
    if cal.n < 14:
        return ()
    delivery = int(np.flatnonzero(week == week[last])[0])
    candidates: list[tuple[int, int, int, int, int]] = []  # shop, product, since, low, high
    for shop in range(N_SHOPS):
        if cal.closed[last, shop]:
            continue
        days = np.flatnonzero(cal.open[:, shop])
        for product in np.flatnonzero(PACKAGED).tolist():
            if events.stockout_mask[delivery:, shop, product].any():
                continue
            counts, point = on_hand[:, shop, product], int(reorder[product])
            for since in days[days >= max(delivery, last - 2)].tolist():
                earlier = days[days < since]
                if len(earlier) == 0:
                    continue
                before = int(earlier[-1])
                low = max(1, int(counts[since]) - point + 1)
                high = int(counts[last]) - 1
                if before >= delivery:
                    high = min(high, int(counts[before]) - point)
                elif counts[before] < point:
                    continue
                if low <= high:
                    candidates.append((shop, product, since, low, high))
    # Goods come by the case: whole cases missing when some product and day allow it.
    by_case = [(shop, product, since, -(-low // CASE) * CASE, high // CASE * CASE)
               for shop, product, since, low, high in candidates if -(-low // CASE) * CASE <= high]
    pool, step = (by_case, CASE) if by_case else (candidates, 1)
    if not pool:
        return ()
    shop, product, since, low, high = pool[int(rng.integers(len(pool)))]
    short_by = low + step * int(rng.integers((high - low) // step + 1))
    on_hand[delivery:, shop, product] -= short_by
    return (LowStock(SHOP_IDS[shop], str(SKUS[product]), cal.day(delivery), short_by,
                     cal.day(since), int(on_hand[last, shop, product]), int(reorder[product])),)


def _stock_csv(cal: _Calendar, on_hand: np.ndarray, days: np.ndarray) -> str:
    on_shelf = cal.open[days][:, :, None] & _season_active(cal)[days][:, None, :]
    d, s, p = np.nonzero(on_shelf)
    iso = [str(x) for x in cal.dates[days].tolist()]
    rows = [f"{iso[a]},{SHOP_IDS[b]},{SKUS[c]},{v}" for a, b, c, v in
            zip(d.tolist(), s.tolist(), p.tolist(), on_hand[days[d], s, p].tolist(),
                strict=True)]
    return "count_date,shop_id,sku,on_hand\n" + "".join(f"{r}\n" for r in rows)


# ---------------------------------------------------------------------------------------------
# Files


def _write_gz(path: Path, text: str) -> None:
    """gzip with mtime 0 and no file name in the header, so the bytes are reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_xlsx(path: Path, sheet: str, header: tuple[str, ...], rows: list[tuple[Any, ...]],
                stamp: date) -> None:
    """One sheet as a workbook whose bytes depend on the rows only: the document's dates are
    `stamp` and every member of the zip has the same fixed time (openpyxl writes now)."""
    book = openpyxl.Workbook()
    worksheet = book.active
    worksheet.title = sheet
    worksheet.append(list(header))
    for row in rows:
        worksheet.append(list(row))
    raw = io.BytesIO()
    book.save(raw)
    moment = f"{stamp.isoformat()}T00:00:00Z".encode()
    packed = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(packed, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + moment,
                              data)
            member = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(member, data)
    path.write_bytes(packed.getvalue())


def _footfall(seed: int, cal: _Calendar, shop_receipts: np.ndarray) -> list[tuple[str, ...]]:
    """(day, shop, visitors) of every open shop day: its in-shop receipts plus the visitors
    who bought nothing, at a conversion drawn around 62% per shop day."""
    rng = np.random.default_rng([seed, 1])
    conversion = rng.beta(*CONVERSION, size=shop_receipts.shape)
    browsers = rng.poisson(shop_receipts * (1 - conversion) / conversion)
    visitors = shop_receipts + browsers
    return [(cal.day(d).isoformat(), SHOP_IDS[s], str(int(visitors[d, s])))
            for d in range(cal.n) for s in range(N_SHOPS) if shop_receipts[d, s] > 0]


def _marketing_spend(seed: int, months: list[int]) -> list[tuple[date, float]]:
    """(first day of the month, spend in EUR) of each month of the range: a base, a season
    (January's galettes, la rentrée, Christmas; less in summer) and noise, to the ten euros."""
    rng = np.random.default_rng([seed, 2])
    noise = rng.normal(0.0, 0.08, size=len(months))
    return [(date(key // 100, key % 100, 1),
             float(round(SPEND_BASE * SPEND_SEASON.get(key % 100, 1.0) * (1 + e), -1)))
            for key, e in zip(months, noise.tolist(), strict=True)]


def _clear_previous(out: Path) -> None:
    """Monthly files of an earlier, different range would otherwise be loaded with these."""
    for pattern in ("sales_*.csv.gz", "stock_counts_*.csv.gz", "ground_truth.json",
                    "footfall.csv", "marketing_spend.xlsx"):
        for old in out.glob(pattern):
            old.unlink()


def generate_panpan(
    out_dir: Path,
    *,
    end: date | None = None,
    days: int = 730,
    seed: int = 7,
    scale: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> GroundTruth:
    """Write PanPan's POS exports for `days` days ending at `end` into `out_dir`.

    `end` defaults to yesterday, `scale` multiplies customer traffic. Same arguments give
    byte-identical files. Returns (and writes as ground_truth.json) what was planted.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    say = progress or (lambda _message: None)
    end = end or date.today() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    rng = np.random.default_rng(seed)

    cal = _calendar(np.arange(np.datetime64(start), np.datetime64(end) + 1))
    events = _plan_events(rng, cal, scale)
    traffic = _traffic(rng, cal, events, scale)
    customers = _customers(rng, cal, traffic, scale)
    say(f"customers: {len(customers.rows):,} ({customers.before:,} signed up before {start})")
    price_years = _price_table(range(start.year, end.year + 1))
    galette, buche = _seasonal_share(cal)
    ctx = _Context(
        cal=cal, traffic=traffic, events=events, customers=customers, scale=scale,
        time_cdf=_profiles(), sku_cdf=_sku_cdf(), galette=galette, buche=buche,
        prices=np.stack([price_years[int(y)] for y in cal.year]),
        extra_qty=np.array([p.extra_qty for p in PRODUCTS]),
        fresh=~PACKAGED, ymd=[str(d).replace("-", "") for d in cal.dates.tolist()],
    )

    files = 0
    sold = np.zeros((cal.n, N_SHOPS, N_PRODUCTS), dtype=np.int64)
    month_key = cal.year * 100 + cal.month
    months = np.unique(month_key)
    pending: list[_Lines] = []
    receipts = lines = refunds = 0
    shop_receipts = np.zeros((cal.n, N_SHOPS), dtype=np.int64)
    for key in months.tolist():
        month_days = np.flatnonzero(month_key == key)
        sales = _month_sales(rng, ctx, month_days)
        np.add.at(sold, (sales.day, sales.shop, sales.sku), sales.quantity)
        visit = (sales.line_no == 1) & ~sales.is_return & (sales.channel == 0)
        np.add.at(shop_receipts, (sales.day[visit], sales.shop[visit]), 1)
        pending.append(_refunds(rng, ctx, sales))
        waiting = _Lines.concat(pending)
        due = waiting.day <= month_days[-1]
        pending = [waiting.take(np.flatnonzero(~due))]
        month = _Lines.concat([sales, waiting.take(np.flatnonzero(due))])
        label = f"{key // 100}-{key % 100:02d}"
        _write_gz(out / f"sales_{label}.csv.gz", _sales_csv(ctx, month))
        files += 1
        n_refunds = int(due.sum())
        receipts += int((sales.line_no == 1).sum()) + n_refunds
        refunds += n_refunds
        lines += len(month)
        say(f"sales {label}: {len(month):,} lines")

    on_hand, reorder, low_stock = _stock(rng, cal, sold, events)
    stock_rows = 0
    for key in months.tolist():
        month_days = np.flatnonzero(month_key == key)
        text = _stock_csv(cal, on_hand, month_days)
        _write_gz(out / f"stock_counts_{key // 100}-{key % 100:02d}.csv.gz", text)
        files += 1
        stock_rows += text.count("\n") - 1
    say(f"stock counts: {stock_rows:,} rows")

    _write_csv(out / "shops.csv", ("shop_id", "shop_name", "city", "opened_on"),
               [(s.shop_id, s.name, s.city, s.opened_on.isoformat()) for s in SHOPS])
    current = price_years[end.year]
    _write_csv(out / "products.csv",
               ("sku", "name", "category", "unit_price", "unit_cost", "reorder_point"),
               [(p.sku, p.name, p.category, f"{current[i] / 100:.2f}",
                 f"{round(current[i] * p.cost_ratio) / 100:.2f}", str(reorder[i]))
                for i, p in enumerate(PRODUCTS)])
    _write_csv(out / "customers.csv",
               ("customer_id", "first_name", "last_name", "email", "phone", "signup_date",
                "loyalty_opt_in"), customers.rows)
    files += 3
    visits = _footfall(seed, cal, shop_receipts)
    _write_csv(out / "footfall.csv", ("day", "shop_id", "visitors"), visits)
    _write_xlsx(out / "marketing_spend.xlsx", "Spend", ("Month", "Spend"),
                _marketing_spend(seed, months.tolist()), end)
    files += 2
    say(f"footfall: {len(visits):,} shop days; marketing spend: {len(months)} months")

    truth = GroundTruth(
        start=start, end=end, days=days, seed=seed, scale=scale,
        anomalies=events.anomalies, stockouts=events.stockouts, low_stock=low_stock,
        closed_days={shop: tuple(cal.day(i) for i in np.flatnonzero(cal.closed[:, s]))
                     for s, shop in enumerate(SHOP_IDS)},
        duplicate_customers=customers.duplicates,
        counts={"receipts": receipts, "refunds": refunds, "lines": lines,
                "customers": len(customers.rows), "products": N_PRODUCTS, "shops": N_SHOPS,
                "files": files, "stock_rows": stock_rows},
    )
    (out / "ground_truth.json").write_text(truth.to_json(), encoding="utf-8")
    say(f"ground truth: {len(truth.anomalies)} anomalies, {len(truth.stockouts)} stock-outs, "
        f"{len(truth.low_stock)} short delivery")
    return truth
