MODEL (
  name @{client}_staging.stg_lightspeed_x__inventory_levels,
  kind FULL,
  blueprints @goalpost_blueprints('lightspeed_x'),
  grain (source, counted_on, location_id, product_id),
  audits (
    not_null(columns := (source, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns(columns := (source, counted_on, location_id, product_id))
  )
);

/* Lightspeed X-Series inventory: one record per product and outlet holding its current
   level (the version feed sends it again whenever it changes, and the raw table keeps the
   latest), so this is the latest level, not a history. Inventory records carry no
   created_at or updated_at, only a version, and raw rewrites a row (with a new _loaded_at)
   only when the record changed: counted_on is the local date of the extract that first
   read the level. Products are named by SKU through the product feed; deleted records are
   left out. */
@canonical_select(
  'inventory_levels',
  (
    WITH products AS (
      SELECT
        p.source,
        p.data ->> 'id' AS id,
        COALESCE(NULLIF(p.data ->> 'sku', ''), p.data ->> 'id') AS product_id
      FROM @raw_lookup(@client, 'lightspeed_x', 'products') AS p
    )
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        CAST(@local_time(@client, r._loaded_at) AS DATE) AS counted_on,
        r.data ->> 'outlet_id' AS location_id,
        COALESCE(p.product_id, r.data ->> 'product_id') AS product_id,
        CAST(r.data ->> 'inventory_level' AS NUMERIC) AS on_hand
    FROM @raw_stream(@client, 'lightspeed_x', 'inventory') AS r
    LEFT JOIN products AS p
      ON p.source = r.source AND p.id = r.data ->> 'product_id'
    WHERE
      NOT r._deleted
  )
)
