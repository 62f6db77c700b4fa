MODEL (
  name @{client}_staging.stg_files__products,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    not_null_non_blocking(columns := (source, _key, product_id)),
    unique_combination_of_columns(columns := (source, product_id))
  )
);

/* Products from the client's file streams, typed with each file's dialect. */
@files_staging(@client, 'products')
