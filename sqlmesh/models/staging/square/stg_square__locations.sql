MODEL (
  name @{client}_staging.stg_square__locations,
  kind FULL,
  blueprints @goalpost_blueprints('square'),
  grain (source, location_id),
  audits (
    not_null_non_blocking(columns := (source, location_id, name)),
    unique_combination_of_columns(columns := (source, location_id))
  )
);

/* Square locations (GET /v2/locations). */
@canonical_select(
  'locations',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS location_id,
        r.data ->> 'name' AS name,
        r.data #>> '{address,locality}' AS city,
        CAST(@local_time(@client, r.data ->> 'created_at') AS DATE) AS opened_on
    FROM @raw_stream(@client, 'square', 'locations') AS r
    WHERE
      NOT r._deleted
  )
)
