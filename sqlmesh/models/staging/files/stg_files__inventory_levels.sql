MODEL (
  name @{client}_staging.stg_files__inventory_levels,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    not_null_non_blocking(columns := (source, _key, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns_non_blocking(columns := (source, counted_on, location_id, product_id))
  )
);

/* Stock counts from the client's file streams, typed with each file's dialect. */
@files_staging(@client, 'inventory_levels')
