MODEL (
  name @{client}_staging.stg_shopify__locations,
  kind FULL,
  blueprints @goalpost_blueprints('shopify'),
  grain (source, location_id),
  audits (
    not_null_non_blocking(columns := (source, location_id, name)),
    unique_combination_of_columns(columns := (source, location_id))
  )
);

/* Shopify locations (shops and warehouses), active or not: past orders still name the
   inactive ones. Shopify gives no opening date. */
@canonical_select(
  'locations',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS location_id,
        r.data ->> 'name' AS name,
        NULLIF(r.data #>> '{address,city}', '') AS city
    FROM @raw_stream(@client, 'shopify', 'locations') AS r
    WHERE
      NOT r._deleted
  )
)
