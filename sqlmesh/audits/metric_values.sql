/* Audits of metric values (blocking: a failure keeps kpi_values and what is built on it as
   they were until the data is fixed; everything else is still built). */

AUDIT (
  name metric_values_valid,
  blocking TRUE
);
/* Every value names one of the client's input metrics, is dated by the first day of that
   metric's period (a Monday for a weekly metric, the 1st for a monthly one) and, per
   dimension, by one the metric is computed per, with its value: a value that cannot count
   is an error in its source, never skipped quietly. */
SELECT
  source,
  _key,
  metric,
  period_start,
  dimension,
  dimension_value,
  value,
  problem
FROM @this_model
WHERE
  NOT problem IS NULL;

AUDIT (
  name one_value_per_point,
  blocking TRUE
);
/* One value per point (metric, period, dimension value) from the files and APIs: two sources
   (or two rows of one) giving the same point cannot both be right. A value entered by hand
   corrects them and is not counted here. */
SELECT
  metric,
  period_start,
  dimension,
  dimension_value,
  COUNT(*) AS values_given,
  STRING_AGG(source || ' ' || _key, ', ') AS given_by
FROM @this_model
WHERE
  problem IS NULL AND source <> 'goalpost metrics'
GROUP BY
  metric,
  period_start,
  dimension,
  dimension_value
HAVING
  COUNT(*) > 1;
