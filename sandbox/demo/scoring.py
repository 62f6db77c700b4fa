"""Scoring an anomaly detector's output against the demo's planted events (ground_truth.json).

A planted event moves one shop's sales (both its counter and the deliveries it dispatches) or
the whole delivery channel for one day. An anomaly row is correct when a planted event on its
date moved the series it is on: the total, the shop's own location, the channel it sold
through, or for a delivery event the channel 'livraison' and the shops that dispatch
deliveries. An event is found when a correct row names its cause: the row is the shop's
location (or the delivery channel) itself, or the first contributor of the row in that
dimension is. Precision is over every row scored (the chosen metrics and severities), so a
row on a day nothing was planted counts against it, however real the day was in the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from goalpost.sandbox.demo.generator import DELIVERY, DELIVERY_SPLIT, SHOP_IDS, Anomaly, GroundTruth

DELIVERY_CHANNEL = "livraison"
DISPATCHING = {shop for shop, share in zip(SHOP_IDS, DELIVERY_SPLIT, strict=True) if share > 0}


@dataclass
class Tally:
    events: int = 0
    found: int = 0
    rows: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.events if self.events else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.rows if self.rows else 1.0


@dataclass
class Score:
    overall: Tally
    by_kind: dict[str, Tally]  # "drop" / "spike": events of that kind, rows of that direction
    by_target: dict[str, Tally]  # "shop" / "delivery": events only
    missed: list[Anomaly] = field(default_factory=list)
    misnamed: list[dict] = field(default_factory=list)  # correct rows naming another cause
    false_alarms: list[dict] = field(default_factory=list)


def affects(event: Anomaly, dimension: str, value: str) -> bool:
    """Whether the event moved the series (dimension, value) on its day."""
    delivery = event.shop_id == DELIVERY
    if dimension == "all":
        return True
    if dimension == "location":
        return value in DISPATCHING if delivery else value == event.shop_id
    if dimension == "channel":
        if delivery:
            return value == DELIVERY_CHANNEL
        return value != DELIVERY_CHANNEL or event.shop_id in DISPATCHING
    return False


def named(event: Anomaly, row: dict) -> str | None:
    """The cause the row gives in the event's dimension: the shop (location) or the channel."""
    dimension, cause = (("channel", DELIVERY_CHANNEL) if event.shop_id == DELIVERY
                        else ("location", event.shop_id))
    if row["dimension"] == dimension:
        return row["dimension_value"]
    return next((c["value"] for c in row["contributors"] or () if c["dimension"] == dimension),
                None)


def cause(event: Anomaly) -> str:
    return DELIVERY_CHANNEL if event.shop_id == DELIVERY else event.shop_id


def score(truth: GroundTruth, anomalies: pd.DataFrame, *,
          metrics: Iterable[str] = ("revenue", "orders"),
          severities: Iterable[str] = ("medium", "high")) -> Score:
    """Recall, precision and naming of the anomalies (rows of the anomalies table) of the
    given metrics and severities against the planted events."""
    chosen = anomalies[anomalies["metric"].isin(list(metrics))
                       & anomalies["severity"].isin(list(severities))]
    rows = chosen.to_dict("records")
    by_date: dict = {}
    for event in truth.anomalies:
        by_date.setdefault(event.date, []).append(event)

    overall = Tally(events=len(truth.anomalies), rows=len(rows))
    by_kind = {kind: Tally() for kind in ("drop", "spike")}
    by_target = {target: Tally() for target in ("shop", "delivery")}
    result = Score(overall, by_kind, by_target)
    found: set[Anomaly] = set()
    for row in rows:
        by_kind.setdefault(row["direction"], Tally()).rows += 1
        events = [e for e in by_date.get(pd.Timestamp(row["date"]).date(), [])
                  if affects(e, row["dimension"], row["dimension_value"])]
        if not events:
            result.false_alarms.append(row)
            continue
        overall.correct += 1
        by_kind[row["direction"]].correct += 1
        for event in events:
            if named(event, row) == cause(event):
                found.add(event)
            else:
                result.misnamed.append({**row, "planted": cause(event)})
    for event in truth.anomalies:
        target = "delivery" if event.shop_id == DELIVERY else "shop"
        for tally in (by_kind[event.kind], by_target[target]):
            tally.events += 1
            tally.found += event in found
        if event in found:
            overall.found += 1
        else:
            result.missed.append(event)
    return result
