MODEL (
  name @{client}_staging.stg_manual__metric_values,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key)
);

/* Metric values entered by hand (`goalpost metrics record|import`): one row per point, its
   latest value (goalpost.metric_points keeps every value given, with who and when). */
@canonical_select(
  'metric_values',
  (
    SELECT
      'goalpost metrics' AS source,
      CAST(p.id AS TEXT) AS _key,
      p.recorded_at AS _loaded_at,
      p.metric AS metric,
      p.period_start AS period_start,
      NULLIF(p.dimension, '') AS dimension,
      NULLIF(p.dimension_value, '') AS dimension_value,
      p.value AS value
    FROM (
      SELECT DISTINCT ON (m.metric, m.period_start, m.dimension, m.dimension_value)
        m.*
      FROM goalpost.metric_points AS m
      WHERE
        m.client = @client
      ORDER BY
        m.metric,
        m.period_start,
        m.dimension,
        m.dimension_value,
        m.recorded_at DESC,
        m.id DESC
    ) AS p
  )
)
