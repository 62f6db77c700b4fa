MODEL (
  name @{client}_staging.stg_files__locations,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    not_null_non_blocking(columns := (source, _key, location_id)),
    unique_combination_of_columns(columns := (source, location_id))
  )
);

/* Shops and sites from the client's file streams, typed with each file's dialect. */
@files_staging(@client, 'locations')
