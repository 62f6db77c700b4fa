MODEL (
  name @{client}_staging.stg_files__order_lines,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    not_null_non_blocking(
      columns := (source, _key, order_id, ordered_at, location_id, product_id, quantity, line_total)
    )
  )
);

/* Sales lines from the client's file streams, typed with each file's dialect. */
@files_staging(@client, 'order_lines')
