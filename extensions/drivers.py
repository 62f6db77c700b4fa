"""Driver attribution: how much of a north-star metric's change between two periods each of
its drivers explains, in the metric's own units, with parts that add up exactly to the change.

The maths (period values from the parts that add up, LMDI for products) is
goalpost.core.decomposition, which the weekly review uses too for any week or month.

Periods (ending on the last complete day): the last 7 days against the 7 before, the last 28
against the 28 before, the last full month against the month before, and that month against
the same month a year earlier; a pair is left out when the baseline starts before the data.
Computed for the total and each location (setting `dimensions`, default [location]).
"""

from __future__ import annotations

import pandas as pd

from goalpost.core.decomposition import attribute, roots, tree, wide
from goalpost.extensions._kpi_tools import groups, kpi_frame, last_complete_day, settings_of
from goalpost.extensions.api import Column, Extension, JobContext

DEFAULTS = {"dimensions": ["location"]}


def period_pairs(end: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp,
                                                  pd.Timestamp, pd.Timestamp]]:
    """(period, start, end, baseline start, baseline end) of the standard comparisons."""
    day = pd.Timedelta(days=1)
    month_end = end if (end + day).day == 1 else end.replace(day=1) - day
    month_start = month_end.replace(day=1)
    before_end = month_start - day
    last_year_start = month_start - pd.DateOffset(years=1)
    return [
        ("last_7_days", end - 6 * day, end, end - 13 * day, end - 7 * day),
        ("last_28_days", end - 27 * day, end, end - 55 * day, end - 28 * day),
        ("last_full_month", month_start, month_end, before_end.replace(day=1), before_end),
        ("same_month_last_year", month_start, month_end, last_year_start,
         last_year_start + pd.offsets.MonthEnd(0)),
    ]


def run(job: JobContext) -> pd.DataFrame:
    settings = settings_of("drivers", job.settings, DEFAULTS, job.client)
    registry = job.client.metric_registry()
    frame = kpi_frame(job.data)
    columns = [c.name for c in EXTENSION.columns]
    end = last_complete_day(frame["date"], job.now, job.client.timezone,
                            job.last_complete)
    if end is None:
        return pd.DataFrame(columns=columns)
    trees = [tree(name, registry) for name in roots(registry)]
    rows = []
    for dimension, value, group in groups(frame, settings["dimensions"]):
        daily = wide(group, group["date"].min(), end)
        for root in trees:
            known = group.loc[group["metric"] == root.metric, "date"]
            if known.empty:
                continue
            for period, start, stop, base_start, base_stop in period_pairs(end):
                if base_start < known.min():
                    continue
                found = attribute(daily, root, registry, (start, stop), (base_start, base_stop))
                for row in found or ():
                    rows.append({
                        "metric": root.metric, "period": period,
                        "period_start": start.date(), "period_end": stop.date(),
                        "baseline_start": base_start.date(), "baseline_end": base_stop.date(),
                        "dimension": dimension, "dimension_value": value, **row})
    return pd.DataFrame(rows, columns=columns)


EXTENSION = Extension(
    name="drivers",
    description="the change of each north-star metric between standard periods, split "
                "exactly among its drivers (LMDI)",
    version="1",
    table="driver_attribution",
    columns=(
        Column("metric", "text", "the north-star metric whose change is split"),
        Column("period", "text", "last_7_days, last_28_days, last_full_month or "
                                 "same_month_last_year"),
        Column("period_start", "date"), Column("period_end", "date"),
        Column("baseline_start", "date"), Column("baseline_end", "date"),
        Column("dimension", "text", "all, or the dimension of dimension_value"),
        Column("dimension_value", "text"),
        Column("driver", "text", "the metric itself (its total change) or one of its drivers"),
        Column("parent", "text", "the metric this driver decomposes"),
        Column("level", "integer", "0 for the metric, 1 for its drivers, 2 for theirs"),
        Column("method", "text", "lmdi (a product) or additive (a sum)"),
        Column("baseline_value", "number", "over the baseline period, from its summed parts"),
        Column("current_value", "number"),
        Column("change_pct", "number", "the driver's own change"),
        Column("contribution", "number", "in units of the metric; drivers of one parent add "
                                         "up to the parent's"),
        Column("share", "number", "contribution over the metric's total change"),
    ),
    key=("metric", "period", "dimension", "dimension_value", "driver"),
    run=run,
    builtin=True,
)
