MODEL (
  name @{client}_marts.kpi_daily,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (metric, date, dimension, dimension_value)
);

/* One row per metric, day and dimension value: kpi_values' daily rows, i.e. every metric whose
   rhythm is the day (goalpost/core/metrics/standard.yaml plus the client's own, see
   `goalpost metrics list <client>`), in total (dimension 'all') and per location, channel and
   each of the client's dimensions: the long form that forecasts, anomalies, goals, alerts and
   dashboards read per day. Weekly and monthly metrics are in kpi_values only: a monthly
   figure is not spread over days. */
SELECT
  metric,
  period_start AS date,
  dimension,
  dimension_value,
  value
FROM @{client}_marts.kpi_values
WHERE
  grain = 'day'
