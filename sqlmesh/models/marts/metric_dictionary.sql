MODEL (
  name @{client}_marts.metric_dictionary,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (name)
);

/* One row per metric of the client's registry: the metric dictionary (what it means, how it
   is computed, its rhythm, type, category, confidence, hypothesis, owner, target and
   thresholds), for the dashboards; `goalpost metrics show <client>` prints the same. */
@metric_dictionary(@client)
