MODEL (
  name @{client}_staging.current_metric_values,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (metric, period_start, dimension, dimension_value)
);

/* One row per point (metric, period start, dimension value): the value that counts. A value
   entered by hand (`goalpost metrics record|import`) corrects what a file or an API says of
   the same point; two files or APIs giving the same point stop the build (the
   one_value_per_point audit of metric_values). */
SELECT DISTINCT ON (metric, period_start, COALESCE(dimension, ''), COALESCE(dimension_value, ''))
  source,
  metric,
  period_start,
  dimension,
  dimension_value,
  value
FROM @{client}_staging.metric_values
WHERE
  problem IS NULL
ORDER BY
  metric,
  period_start,
  COALESCE(dimension, ''),
  COALESCE(dimension_value, ''),
  source = 'goalpost metrics' DESC,
  _loaded_at DESC
