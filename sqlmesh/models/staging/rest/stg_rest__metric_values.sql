MODEL (
  name @{client}_staging.stg_rest__metric_values,
  kind FULL,
  blueprints @goalpost_blueprints('rest'),
  grain (source, _key),
  audits (
    unique_combination_of_columns(columns := (source, _key))
  )
);

/* Metric values from the client's `connector: rest` sources: the records of each stream whose
   entity is metric_values, each field read at the record path its manifest's `fields` gives
   (or the constant written `=value`). */
@rest_staging(@client, 'metric_values')
