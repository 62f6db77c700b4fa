MODEL (
  name @{client}_staging.stg_files__inventory_levels,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key (source, _key)
  ),
  allow_partials TRUE,
  blueprints @goalpost_blueprints(),
  grain (source, _key),
  audits (
    not_null_non_blocking(columns := (source, _key))
  )
);

/* Stock counts from the client's file streams, typed with each file's dialect.
   Incremental: files are only ever added (a row of a later file replaces the row with the same
   key), so each build reads the rows loaded since the latest one here and merges them by key;
   a change of the stream mappings or `goalpost run --full-refresh` rebuilds it from raw. */
@files_staging(
  @client,
  'inventory_levels',
  (SELECT MAX(_loaded_at) FROM @{client}_staging.stg_files__inventory_levels)
)
