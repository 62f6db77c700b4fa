MODEL (
  name @{client}_marts.metric_relationships,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, target)
);

/* One row per edge of the metric map: a declared relationship (kind relationship: the
   expected direction and lag, confidence and notes), or a part of a formula or of a
   metric's drivers to the metric it computes (kind formula or driver). What the data says
   of each is in <client>_insights.correlations. */
@metric_edges(@client)
