MODEL (
  name @{client}_staging.stg_lightspeed_x__locations,
  kind FULL,
  blueprints @goalpost_blueprints('lightspeed_x'),
  grain (source, location_id),
  audits (
    not_null_non_blocking(columns := (source, location_id, name)),
    unique_combination_of_columns(columns := (source, location_id))
  )
);

/* Lightspeed X-Series outlets (the shops sales are rung in). Deleted outlets are left out;
   opened_on is the local date the outlet was created in X-Series. */
@canonical_select(
  'locations',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS location_id,
        r.data ->> 'name' AS name,
        NULLIF(r.data ->> 'physical_city', '') AS city,
        CAST(@local_time(@client, r.data ->> 'created_at') AS DATE) AS opened_on
    FROM @raw_stream(@client, 'lightspeed_x', 'outlets') AS r
    WHERE
      NOT r._deleted
  )
)
