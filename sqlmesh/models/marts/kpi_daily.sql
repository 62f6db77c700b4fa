MODEL (
  name @{client}_marts.kpi_daily,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (metric, date, dimension, dimension_value),
  audits (
    not_null_non_blocking(columns := (metric, date, dimension, dimension_value)),
    unique_combination_of_columns_non_blocking(columns := (metric, date, dimension, dimension_value))
  )
);

/* Every metric of the client's registry (goalpost/metrics/standard.yaml plus the client's
   own, see `goalpost metrics list <client>`) per day, in total and per location and channel:
   the long form that forecasts, anomalies, goals and alerts read. */
@kpi_daily(@client)
