MODEL (
  name @{client}_staging.stg_files__metric_values,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    unique_combination_of_columns(columns := (source, _key))
  )
);

/* Metric values from the client's file streams (a spreadsheet of monthly marketing spend, a
   CSV of daily footfall per shop), typed with each file's dialect. */
@files_staging(@client, 'metric_values')
