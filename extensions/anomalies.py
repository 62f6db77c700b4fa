"""Anomalies: the days on which a metric left its usual range, judged as they would have been
on the day (each point against its past only), with the shops, channels and products behind
them.

Per series of kpi_daily (a metric in total, per location or per channel):

1. values are read through asinh(y / s), s a tenth of the series' typical size in its first
   four weeks or its standard deviation there if larger: log-like for sales (a factor is a
   factor whatever the shop's size), yet defined at zero and below, and nearly linear for a
   sparse series such as refunds;
2. expected = the median of the same weekday over the previous `weeks` weeks (public holidays
   of the client's country count as Sundays: shops run them so), plus the median gap between
   that baseline and the last seven days, so a ramp out of August or a new price level is
   followed within days rather than flagged for weeks. A total over locations (the client's,
   a channel's) is expected to be the sum of its open locations' expected values when that
   sum has missed by less over the past year: a shop shut on its day off, on a holiday or for
   the summer is not the total's anomaly. A location (or channel) is moved by beta times how
   its siblings moved that day, beta fitted on their past: weather, a city-wide event or
   Christmas move every shop, a burst pipe one. With a year of history, where the model
   missed by the same amount all through the same week a year before (the return from the
   summer holidays, the run-up to Christmas), that miss is added back;
3. robust z = (residual - median) / (1.4826 * MAD) of the previous `window` days' residuals;
   on public holidays and in the year-end `festive` season the band is WIDENING times wider
   (they swing for reasons six weeks of history cannot know). A series at 0 on more than a
   tenth of its past days has no daily baseline and is not judged;
4. an IsolationForest on residual features (z, yesterday's z, the recent level gap, the change
   against the same weekday a week before, the weekday), fitted on the past year of every
   series and fitted again every `refit_days`, gives each day the share of past days it is
   more isolated than (0.5 until the first forest);
5. score = 0.7 * min(|z| / (3 * threshold), 1) + 0.3 * that share; a day is reported when
   |z| >= threshold once its series has `min_history` observed days, with severity high
   (score >= 0.75), medium (>= 0.62) or low.

Each of the client's own dimensions (country, category...) is judged the same way in a pass
of its own: its values like locations, beside the total, whose anomalies then also name the
values that moved them.

For an anomaly of a total, a location or a channel, the contributors are the slices one level
down, each with its own expected value: the locations, channels and products of the total;
the channels and products of a location; the locations of a channel (from daily_sales and
product_sales_daily). They are ranked by their deviation in the anomaly's direction; share =
the slice's part of its dimension's deviations in that direction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from goalpost.core.errors import GoalpostError
from goalpost.extensions.api import DISTINCT_SERIES, Column, Extension, Inputs, JobContext

SLICES = ("location", "channel", "product")
KEY = ("metric", "location", "channel", "product")
MAD_TO_SD = 1.4826
MEAN_ABS_TO_SD = 1.2533
MIN_SCALE = 1e-3  # asinh units (~0.1%): below it a residual is rounding, not news
Z_WEIGHT = 0.7
SEVERITY = (("high", 0.75), ("medium", 0.62), ("low", 0.0))
FOREST_HISTORY = 365  # days a forest learns on
FOREST_MIN_ROWS = 200  # past judged days (of all series) the first forest waits for
FOREST_TREES = 50
TOP_CONTRIBUTORS = 3
WIDENING = 2.0  # how much wider the band is on public holidays and in the festive season
CHOICE_WINDOW = 365  # days over which a total's own and summed expected values compete
MAX_ZERO_SHARE = 0.1  # judged only when at most this share of the past window was 0
LAST_YEAR = 364  # days back to the same weekday a year before
LAST_YEAR_SE = 3.0  # how far the week's median miss must stand out from chance
SHARED_CLIP = 2.5  # robust standard deviations a sibling's residual counts for, at most
MIN_RESIDUALS = 28  # past residuals the spread is measured on, at least
FOREST_AGREES = 0.9  # the forest flags a day more isolated than 90% of the past

# The marts' own figures per location x channel and per product, for the metrics whose
# standard definition they share (a client overriding a metric keeps kpi_daily's slices only).
# kpi_daily's rows carry their dimension: location and channel ones are the location and
# channel slices; those of the client's own dimensions (dimension not location or channel) are
# judged in a pass of their own (see run). A dimension with a single value is the total and is
# left out (DISTINCT_SERIES).
SLICES_SQL = """
SELECT 'kpi' AS source, metric, date,
       CASE WHEN dimension = 'location' THEN dimension_value END AS location,
       CASE WHEN dimension = 'channel' THEN dimension_value END AS channel,
       CAST(NULL AS text) AS product, CAST(value AS double precision) AS value,
       dimension, dimension_value
FROM {marts}.kpi_daily
WHERE """ + DISTINCT_SERIES + """
UNION ALL
SELECT 'sales', m.metric, s.sales_date, COALESCE(s.location_id, '(none)'), s.channel, NULL,
       m.value, NULL, NULL
FROM {marts}.daily_sales AS s
CROSS JOIN LATERAL (VALUES
    ('revenue', CAST(s.revenue AS double precision)),
    ('orders', CAST(s.orders AS double precision)),
    ('items', CAST(s.items AS double precision)),
    ('customers', CAST(s.customers AS double precision)),
    ('average_ticket', CAST(s.average_ticket AS double precision))) AS m(metric, value)
WHERE m.value IS NOT NULL
UNION ALL
SELECT 'product', m.metric, p.sales_date, COALESCE(p.location_id, '(none)'), NULL,
       p.product_id, m.value, NULL, NULL
FROM {marts}.product_sales_daily AS p
CROSS JOIN LATERAL (VALUES
    ('revenue', CAST(p.revenue AS double precision)),
    ('items', CAST(p.units_sold AS double precision))) AS m(metric, value)
ORDER BY 1, 2, 4, 5, 6, 3
"""
ZERO_WHEN_ABSENT = {"revenue", "orders", "items", "customers"}
SLICE_METRICS = {"sales": ("revenue", "orders", "items", "customers", "average_ticket"),
                 "product": ("revenue", "items")}

COLUMNS = (
    Column("metric", "text"),
    Column("dimension", "text", "'all', 'location', 'channel' or one of the client's own"),
    Column("dimension_value", "text", "'all' for the total"),
    Column("date", "date"),
    Column("value", "number", "what the day was"),
    Column("expected", "number", "what its past said it would be"),
    Column("lower", "number", "below this the day is a drop"),
    Column("upper", "number", "above this the day is a spike"),
    Column("score", "number", "0 to 1: robust z and isolation forest combined"),
    Column("severity", "text", "low, medium or high (from the score)"),
    Column("direction", "text", "spike or drop"),
    Column("contributors", "jsonb", "the slices one level down that moved the most: "
           "[{dimension, value, deviation, share}]"),
    Column("method", "text", "which detectors flagged the day"),
)


@dataclass(frozen=True)
class Settings:
    """`extension_settings: {anomalies: {...}}` in the client's YAML."""

    weeks: int = 6  # same-weekday values in the seasonal baseline
    window: int = 91  # days of past residuals the robust z is measured on
    min_history: int = 28  # observed days a series needs before its days are judged
    threshold: float = 3.0  # |robust z| from which a day is an anomaly
    refit_days: int = 56  # how often the isolation forest learns again
    festive: str = "12-20/01-03"  # MM-DD/MM-DD judged with a wider band; "" for none

    def festive_days(self) -> tuple[int, int] | None:
        """The festive season as (first, last) month * 100 + day, None when there is none."""
        if not self.festive:
            return None
        try:
            first, last = (date(2000, *map(int, day.split("-")))
                           for day in self.festive.split("/"))
        except (TypeError, ValueError):
            raise GoalpostError(f"anomalies: festive must be MM-DD/MM-DD, not "
                                f"{self.festive!r}", hint='e.g. festive: "12-20/01-03", '
                                'or "" for no festive season') from None
        return first.month * 100 + first.day, last.month * 100 + last.day

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise GoalpostError(f"anomalies: unknown setting(s) {', '.join(unknown)}",
                                hint=f"extension_settings.anomalies takes "
                                     f"{', '.join(known)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if known[name].type == "str":
                values[name] = "" if value is None else str(value)
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if known[name].type == "int" and not isinstance(value, int):
                number = False
            if not number or value <= 0:
                kind = "a whole number" if known[name].type == "int" else "a number"
                raise GoalpostError(f"anomalies: setting {name} must be {kind} above 0, "
                                    f"not {value!r}",
                                    hint=f"e.g. {name}: {getattr(cls, name)}")
            values[name] = value
        settings = cls(**values)
        settings.festive_days()
        if settings.min_history < settings.weeks:
            raise GoalpostError("anomalies: min_history must be at least weeks",
                                hint="the seasonal baseline needs that much history")
        return settings


@dataclass
class _Series:
    """The series as a (days x series) matrix, with each series' key and its children."""

    dates: pd.DatetimeIndex
    keys: list[tuple[str, str | None, str | None, str | None]]
    values: np.ndarray  # NaN when the slice had no row that day
    children: dict[int, list[tuple[str, int]]]  # series -> [(dimension, child series)]
    reported: np.ndarray  # indices of kpi_daily's series, the ones anomalies are reported on


BUILT_IN_SLICES = ("all", "location", "channel")


def run(job: JobContext) -> pd.DataFrame:
    settings = Settings.from_dict(job.settings)
    standard = _standard_metrics(job.client.metric_registry())
    data = job.data
    dimension = data["dimension"] if "dimension" in data.columns else pd.Series(
        None, index=data.index, dtype=object)
    own = [c for c in data.columns if c not in ("dimension", "dimension_value")]
    found = detect(data.loc[dimension.isna() | dimension.isin(BUILT_IN_SLICES), own],
                   country=job.client.country, standard=standard, settings=settings)
    for name in sorted(set(dimension.dropna()) - set(BUILT_IN_SLICES)):
        found = _with_dimension(found, data, str(name), job.client.country, standard, settings)
    return found


def _with_dimension(found: pd.DataFrame, data: pd.DataFrame, name: str, country: str | None,
                    standard: set[str], settings: Settings) -> pd.DataFrame:
    """The anomalies of the client's dimension `name` added to `found`, and its values among
    the contributors of the total's anomalies: its kpi_daily series are judged like locations
    (each against its past, moved with its siblings), beside the total, in a pass of their
    own."""
    rows = data[data["dimension"].isin(["all", name])].assign(
        location=lambda f: f["dimension_value"].where(f["dimension"] == name), channel=None)
    judged = detect(rows.drop(columns=["dimension", "dimension_value"]), country=country,
                    standard=standard, settings=settings)
    if judged.empty:
        return found

    def renamed(contributors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(c, dimension=name) for c in contributors if c["dimension"] == "location"]

    own = judged[judged["dimension"] == "location"].assign(
        dimension=name, contributors=lambda f: f["contributors"].map(renamed))
    extra = {(r.metric, r.date): renamed(r.contributors)
             for r in judged[judged["dimension"] == "all"].itertuples()}
    if not found.empty:
        found = found.assign(contributors=[
            [*c, *extra.get((m, d), [])] if dim == "all" else c for m, d, dim, c in
            zip(found["metric"], found["date"], found["dimension"], found["contributors"],
                strict=True)])
    combined = pd.concat([f for f in (found, own) if not f.empty], ignore_index=True)
    return combined.sort_values(["metric", "dimension", "dimension_value", "date"],
                                ignore_index=True)


def _standard_metrics(registry: dict[str, Any]) -> set[str]:
    """Metrics still computed as the standard ones: the marts' slices hold the same figures."""
    from goalpost.core.metrics import standard_metrics

    shipped = standard_metrics()
    return {name for name, metric in registry.items()
            if name in shipped and metric.value == shipped[name].value}


def detect(data: pd.DataFrame, *, country: str | None = None,
           standard: set[str] | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """Anomalies of every kpi_daily series in `data` (the rows of SLICES_SQL: source, metric,
    date, location, channel, product, value), one row per anomaly. `standard` names the
    metrics whose daily_sales and product_sales_daily slices may explain a kpi anomaly (all of
    them when None)."""
    settings = settings or Settings()
    columns = [c.name for c in COLUMNS]
    judged = _judge(data, country, standard, settings)
    if judged is None:
        return pd.DataFrame(columns=columns)
    series, z = judged.series, judged.z
    flagged = np.abs(np.nan_to_num(z)) >= settings.threshold
    rows = []
    for t, k in zip(*np.nonzero(flagged), strict=True):
        j = int(series.reported[k])
        s = judged.scale[j]
        centre = judged.expected[t, j] + judged.centre[t, k]
        band = settings.threshold * judged.spread[t, k]
        direction = "spike" if z[t, k] > 0 else "drop"
        metric, location, channel, _ = series.keys[j]
        dimension, value = (("location", location) if location is not None else
                            ("channel", channel) if channel is not None else ("all", "all"))
        score = judged.score[t, k]
        rarity = judged.rarity[t, k]
        rows.append({
            "metric": metric, "dimension": dimension, "dimension_value": value,
            "date": series.dates[t].date(), "value": float(series.values[t, j]),
            "expected": round(float(s * np.sinh(centre)), 4),
            "lower": round(float(s * np.sinh(centre - band)), 4),
            "upper": round(float(s * np.sinh(centre + band)), 4),
            "score": round(float(score), 4),
            "severity": next(name for name, low in SEVERITY if score >= low),
            "direction": direction,
            "contributors": _contributors(series, judged.own, judged.scale, t, j, direction),
            "method": ("robust_z+isolation_forest" if rarity >= FOREST_AGREES
                       else "robust_z"),
        })
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["metric", "dimension", "dimension_value", "date"], ignore_index=True)


@dataclass
class _Judgement:
    """Every day of every series judged: the matrices rows are read from."""

    series: _Series
    scale: np.ndarray  # per series: the asinh scale
    expected: np.ndarray  # (days, series), asinh units
    own: np.ndarray  # the same before the siblings' shared move
    centre: np.ndarray  # (days, reported): median of the past residuals
    spread: np.ndarray  # (days, reported): their robust standard deviation
    z: np.ndarray  # (days, reported): NaN where the day is not judged
    rarity: np.ndarray  # (days, reported): share of past points the forest finds commoner
    score: np.ndarray  # (days, reported)


def _judge(data: pd.DataFrame, country: str | None, standard: set[str] | None,
           settings: Settings) -> _Judgement | None:
    missing = {"source", "metric", "date", "location", "channel", "product", "value"} - set(
        data.columns)
    if missing:
        raise GoalpostError(f"anomalies: input lacks column(s) {', '.join(sorted(missing))}",
                            hint="the extension reads SLICES_SQL over the client's marts")
    series = _matrix(data, standard)
    if series is None:
        return None
    holiday = _holidays(country, series.dates)
    weekday = np.where(holiday, 6, series.dates.dayofweek)
    scale = _scales(series.values)
    x = np.arcsinh(series.values / scale)
    baseline, gap = _expected(x, weekday, settings.weeks)
    expected = baseline + gap
    rep = series.reported
    expected[:, rep] = _bottom_up_where_better(series, x, expected, scale)
    own = expected.copy()  # what contributors are measured against: deviations that add up
    expected[:, rep] += _shared_move(series, x[:, rep] - expected[:, rep], settings.window)
    residual = x[:, rep] - expected[:, rep]
    centre, spread, count = _past_stats(residual, settings.window)
    recurring = _last_year(residual - centre, spread)
    expected[:, rep] += recurring
    residual -= recurring
    observed_before = np.vstack([np.zeros((1, len(rep))),
                                 np.cumsum(~np.isnan(x[:, rep]), axis=0)[:-1]])
    # A series at zero on many days (refunds, a channel barely used) has no daily baseline to
    # speak of: a day of 30 EUR refunds after three without is not news.
    values = series.values[:, rep]
    zeros = pd.DataFrame(np.where(np.isnan(values), np.nan, values == 0)).shift(1).rolling(
        settings.window, min_periods=1).mean().to_numpy()
    judged = (~np.isnan(residual) & ~np.isnan(spread) & (spread > 0)
              & (count >= min(MIN_RESIDUALS, settings.window // 2))
              & (observed_before >= settings.min_history) & (zeros <= MAX_ZERO_SHARE))
    unusual = holiday | _within(series.dates, settings.festive_days())
    spread = spread * np.where(unusual, WIDENING, 1.0)[:, None]
    z = np.where(judged, (residual - centre) / np.where(judged, spread, 1.0), np.nan)
    rarity = _forest(z, x[:, rep], gap[:, rep], spread, weekday, settings)
    z_part = np.minimum(np.abs(z) / (3 * settings.threshold), 1.0)
    score = Z_WEIGHT * z_part + (1 - Z_WEIGHT) * np.where(np.isnan(rarity), 0.5, rarity)
    return _Judgement(series, scale, expected, own, centre, spread, z, rarity, score)


def _matrix(data: pd.DataFrame, standard: set[str] | None) -> _Series | None:
    """One column per series: kpi_daily's, the location x channel slices of daily_sales and
    the products per location and in total, zeros where a slice sold nothing on a day its
    parent was open."""
    frame = data[list(data.columns)].copy()
    frame = frame[frame["value"].notna()]
    if standard is not None:
        frame = frame[(frame["source"] == "kpi") | frame["metric"].isin(standard)]
    for source, metrics in SLICE_METRICS.items():
        frame = frame[(frame["source"] != source) | frame["metric"].isin(metrics)]
    if frame.empty:
        return None
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = frame["value"].astype(float)
    frame = frame.astype({c: object for c in SLICES})
    frame[list(SLICES)] = frame[list(SLICES)].where(frame[list(SLICES)].notna(), None)
    products = frame[frame["source"] == "product"]
    totals = (products.groupby(["metric", "date", "product"], as_index=False)["value"].sum()
              .assign(source="product", location=None, channel=None))
    frame = pd.concat([frame, totals[frame.columns]], ignore_index=True)

    keys = list(zip(*(frame[c] for c in KEY), strict=True))
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object))
    dates = pd.date_range(frame["date"].min(), frame["date"].max(), freq="D")
    values = np.full((len(dates), len(uniques)), np.nan)
    values[(frame["date"] - dates[0]).dt.days.to_numpy(), codes] = frame["value"].to_numpy()
    keys = [tuple(k) for k in uniques]
    index = {k: i for i, k in enumerate(keys)}

    children: dict[int, list[tuple[str, int]]] = {}
    for i, (metric, *slices) in enumerate(keys):
        for d, dropped in enumerate(SLICES):
            if slices[d] is not None:
                parent = (metric, *(None if e == d else v for e, v in enumerate(slices)))
                if parent in index:
                    children.setdefault(index[parent], []).append((dropped, i))
    kpi = [i for i, (_, location, channel, product) in enumerate(keys)
           if product is None and (location is None or channel is None)]
    # A shop's channel or product that sold nothing on a day the shop was open sold 0 (the
    # marts have no row for it); before its first sale it did not exist.
    reported = set(kpi)
    for i, (metric, location, *_) in enumerate(keys):
        shop = index.get((metric, location, None, None))
        if metric not in ZERO_WHEN_ABSENT or i in reported or shop is None:
            continue
        column = values[:, i]
        seen = np.flatnonzero(~np.isnan(column))
        gap = np.isnan(column) & ~np.isnan(values[:, shop])
        gap[: seen[0]] = False
        column[gap] = 0.0
    return _Series(dates, keys, values, children, np.array(kpi, dtype=int))


def _shared_move(series: _Series, residual: np.ndarray, window: int) -> np.ndarray:
    """What a shop (or channel) was expected to add today given how its siblings (the other
    shops, the other channels) moved: weather, a strike in town or Christmas move every shop,
    a burst pipe one. beta * the siblings' mean residual, each sibling's held within
    SHARED_CLIP of its own robust spread (a sibling's own accident must not move the others),
    beta fitted on the past half year (a regression through 0, in [-1, 1]); 0 for totals."""
    shared = np.zeros_like(residual)
    centre, spread, _ = _past_stats(residual, window)
    with np.errstate(invalid="ignore"):
        held = np.clip(residual, centre - SHARED_CLIP * spread, centre + SHARED_CLIP * spread)
    keys = [series.keys[j] for j in series.reported]
    for k, (metric, location, channel, _) in enumerate(keys):
        if location is None and channel is None:
            continue
        siblings = [i for i, (m, l2, c2, _) in enumerate(keys) if i != k and m == metric
                    and (l2 is None) == (location is None) and (c2 is None) == (channel is None)]
        if not siblings:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no sibling open that day
            common = np.nanmean(held[:, siblings], axis=1)
        both = ~np.isnan(common) & ~np.isnan(residual[:, k])
        products = pd.Series(np.where(both, residual[:, k] * np.nan_to_num(common), np.nan))
        squares = pd.Series(np.where(both, np.nan_to_num(common) ** 2, np.nan))
        past = {"window": CHOICE_WINDOW // 2, "min_periods": MIN_RESIDUALS}
        beta = (products.shift(1).rolling(**past).sum()
                / squares.shift(1).rolling(**past).sum()).to_numpy()
        beta = np.clip(np.nan_to_num(beta), -1.0, 1.0)
        shared[:, k] = beta * np.nan_to_num(common)
    return shared


def _last_year(deviation: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """What the same week a year before (52 weeks back, +-3 days) says about today: where the
    model was off by the same amount for that whole week (the run-up to Christmas, the return
    from the summer holidays), the median of its misses then, when it stands out from chance
    (LAST_YEAR_SE standard errors of a median of seven); a one-day accident is ignored."""
    rows, reach = len(deviation), 3
    padded = np.vstack([np.full((LAST_YEAR + reach, deviation.shape[1]), np.nan), deviation])
    index = np.arange(rows)[:, None] + np.arange(-reach, reach + 1)[None, :] + reach
    week = padded[index]  # (rows, 7, series): rows t - 364 - 3 .. t - 364 + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no such week yet
        missed = np.nanmedian(week, axis=1)
    enough = np.sum(~np.isnan(week), axis=1) >= 5
    error = 1.2533 * spread / np.sqrt(2 * reach + 1)
    with np.errstate(invalid="ignore"):
        stands_out = enough & (np.abs(missed) >= LAST_YEAR_SE * error)
    return np.where(stands_out, missed, 0.0)


def _bottom_up_where_better(series: _Series, x: np.ndarray, expected: np.ndarray,
                            scale: np.ndarray) -> np.ndarray:
    """The reported series' expected values: their own, or the sum of their locations' where
    that sum missed by less on average over the past year (shops are independent; a delivery
    channel whose orders move to the open shop is not)."""
    rep = series.reported
    own = expected[:, rep]
    summed = _bottom_up(series, expected, scale)[:, rep]

    def past_error(predicted: np.ndarray) -> np.ndarray:
        error = pd.DataFrame(np.abs(x[:, rep] - predicted)).shift(1)
        return error.rolling(CHOICE_WINDOW, min_periods=MIN_RESIDUALS).mean().to_numpy()

    own_error, summed_error = past_error(own), past_error(summed)
    better = ~np.isnan(summed_error) & ~(own_error < summed_error)
    return np.where(better, summed, own)


def _bottom_up(series: _Series, expected: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A total over locations (the client's, or a channel's) of a metric that adds up is
    expected to be the sum of what its open locations were expected to sell: a shop shut
    for its weekly day off, a holiday or the summer is not the total's anomaly. Until every
    open location has a past, the total's own expected value stands."""
    expected = expected.copy()
    for j in series.reported:
        metric, location, _, product = series.keys[j]
        parts = [c for d, c in series.children.get(j, []) if d == "location"]
        if metric not in ZERO_WHEN_ABSENT or location is not None or product is not None \
                or not parts:
            continue
        open_ = ~np.isnan(series.values[:, parts])
        part_expected = scale[parts] * np.sinh(expected[:, parts])
        known = (open_ <= ~np.isnan(part_expected)).all(axis=1) & open_.any(axis=1)
        total = np.where(open_, part_expected, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore"):
            expected[:, j] = np.where(known, np.arcsinh(total / scale[j]), expected[:, j])
    return expected


def _holidays(country: str | None, dates: pd.DatetimeIndex) -> np.ndarray:
    """The client's public holidays among the dates (none for a country the calendar lacks)."""
    if not country:
        return np.zeros(len(dates), dtype=bool)
    import holidays

    try:
        days = holidays.country_holidays(country, years=range(dates[0].year,
                                                              dates[-1].year + 1))
    except NotImplementedError:
        return np.zeros(len(dates), dtype=bool)
    return np.isin(dates.date, np.array(list(days), dtype=object))


def _within(dates: pd.DatetimeIndex, season: tuple[int, int] | None) -> np.ndarray:
    """Whether each date falls in the season, (first, last) as month * 100 + day, inclusive;
    a season whose last day comes before its first runs across the new year."""
    if season is None:
        return np.zeros(len(dates), dtype=bool)
    first, last = season
    key = np.asarray(dates.month * 100 + dates.day)
    return (key >= first) & (key <= last) if first <= last else (key >= first) | (key <= last)


def _scales(values: np.ndarray, days: int = 28) -> np.ndarray:
    """Where asinh(y / s) turns from linear to logarithmic, per series, from its first `days`
    observed days: a tenth of its typical size, or its standard deviation if larger. Sales
    are read as ratios; a sparse series (refunds: nothing most days, 30 EUR some) stays
    nearly linear, so a day without any is not a fall to nothing."""
    scale = np.ones(values.shape[1])
    for j in range(values.shape[1]):
        first = values[:, j][~np.isnan(values[:, j])][:days]
        if len(first):
            size = max(0.1 * float(np.median(np.abs(first))), float(np.std(first)))
            scale[j] = size if size > 0 else max(float(np.abs(first).max()), 1.0)
    return scale


def _expected(x: np.ndarray, weekday: np.ndarray, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """The median of the same weekday over the previous weeks, and the recent level gap
    (the median of the last seven days' distance to their own weekday medians)."""
    baseline = np.full_like(x, np.nan)
    for day in range(7):
        rows = np.flatnonzero(weekday == day)
        if len(rows):
            baseline[rows] = _past_median(x[rows], weeks, min(3, weeks))
    return baseline, np.nan_to_num(_past_median(x - baseline, 7, 3))


def _past_median(values: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Per row, the median of each column over the `window` rows before it (NaN skipped;
    NaN when fewer than `min_count` are there)."""
    past = _past_windows(values, window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN
        median = np.nanmedian(past, axis=-1)
    return np.where(np.sum(~np.isnan(past), axis=-1) >= min_count, median, np.nan)


def _past_windows(values: np.ndarray, window: int) -> np.ndarray:
    """(rows, columns, window): the `window` rows before each row, NaN before the first."""
    padded = np.vstack([np.full((window, values.shape[1]), np.nan), values[:-1]])
    return np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)


def _past_stats(residual: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Median, robust spread and count of each day's previous `window` residuals."""
    past = _past_windows(residual, window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN
        centre = np.nanmedian(past, axis=-1)
        deviation = np.abs(past - centre[..., None])
        mad = np.nanmedian(deviation, axis=-1)
        mean_abs = np.nanmean(deviation, axis=-1)
    count = np.sum(~np.isnan(past), axis=-1)
    # Counts of a few a day often have MAD 0: their mean deviation still measures the spread.
    spread = np.where(mad > 0, MAD_TO_SD * mad, MEAN_ABS_TO_SD * mean_abs)
    spread = np.where(spread > 0, np.maximum(spread, MIN_SCALE), spread)
    return centre, spread, count


def _forest(z: np.ndarray, x: np.ndarray, gap: np.ndarray, spread: np.ndarray,
            weekday: np.ndarray, settings: Settings) -> np.ndarray:
    """Per judged point, the share of past points an IsolationForest finds less isolated;
    NaN before the forest has enough past to learn on."""
    rarity = np.full(z.shape, np.nan)
    t_idx, k_idx = np.nonzero(~np.isnan(z))
    if len(t_idx) == 0:
        return rarity
    with np.errstate(invalid="ignore", divide="ignore"):
        lag_z = np.vstack([np.full((1, z.shape[1]), np.nan), z[:-1]])
        lag_x = np.vstack([np.full((7, x.shape[1]), np.nan), x[:-7]])
        level = gap / spread
        weekly = (x - lag_x) / spread
    features = np.column_stack([
        z[t_idx, k_idx], np.nan_to_num(lag_z[t_idx, k_idx]), np.nan_to_num(level[t_idx, k_idx]),
        np.nan_to_num(weekly[t_idx, k_idx]), weekday[t_idx]])
    features = np.clip(features, -50, 50)
    # The first forest as soon as there are enough past points, then one every refit_days.
    order = np.sort(t_idx)
    if len(order) <= FOREST_MIN_ROWS:
        return rarity
    start = int(order[FOREST_MIN_ROWS]) + 1
    rng = np.random.default_rng(0)
    for block in range(start, int(t_idx.max()) + 1, settings.refit_days):
        train = (t_idx >= block - FOREST_HISTORY) & (t_idx < block)
        score = (t_idx >= block) & (t_idx < block + settings.refit_days)
        if train.sum() < FOREST_MIN_ROWS or not score.any():
            continue
        forest = IsolationForest(n_estimators=FOREST_TREES, max_samples=min(256, int(train.sum())),
                                 random_state=0)
        forest.fit(features[train])
        sample = features[train]
        if len(sample) > 2048:
            sample = sample[rng.choice(len(sample), 2048, replace=False)]
        past = np.sort(-forest.score_samples(sample))
        now = -forest.score_samples(features[score])
        rarity[t_idx[score], k_idx[score]] = np.searchsorted(past, now, side="left") / len(past)
    return rarity


def _contributors(series: _Series, expected: np.ndarray, scale: np.ndarray, t: int, j: int,
                  direction: str) -> list[dict[str, Any]]:
    """The slices one level down that moved the most in the anomaly's direction, per
    dimension: their deviation from their own expected value and its share of the
    dimension's deviations in that direction."""
    sign = 1.0 if direction == "spike" else -1.0
    by_dimension: dict[str, list[tuple[str, float]]] = {}
    for dimension, child in series.children.get(j, []):
        if np.isnan(expected[t, child]):
            continue
        actual = series.values[t, child]
        deviation = (0.0 if np.isnan(actual) else actual) - scale[child] * np.sinh(
            expected[t, child])
        if deviation * sign > 0:
            name = series.keys[child][1 + SLICES.index(dimension)]
            by_dimension.setdefault(dimension, []).append((str(name), float(deviation)))
    found = []
    for dimension in SLICES:
        moved = sorted(by_dimension.get(dimension, []), key=lambda item: -abs(item[1]))
        total = sum(deviation for _, deviation in moved)
        found += [{"dimension": dimension, "value": name, "deviation": round(deviation, 2),
                   "share": round(deviation / total, 3)}
                  for name, deviation in moved[:TOP_CONTRIBUTORS]]
    return found


EXTENSION = Extension(
    name="anomalies",
    description="Days on which a metric left its usual range, in total, per location, per "
                "channel and per value of the client's own dimensions, judged on their past "
                "only (weekday baseline, robust z, isolation forest), with the locations, "
                "channels, products and dimension values that moved it",
    version="2",
    table="anomalies",
    columns=COLUMNS,
    inputs=Inputs(sql=SLICES_SQL),
    key=("metric", "dimension", "dimension_value", "date"),
    run=run,
    builtin=True,
)
