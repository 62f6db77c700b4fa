MODEL (
  name @{client}_staging.stg_square__inventory_levels,
  kind FULL,
  blueprints @goalpost_blueprints('square'),
  grain (source, counted_on, location_id, product_id),
  audits (
    not_null(columns := (source, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns(columns := (source, counted_on, location_id, product_id))
  )
);

/* Square inventory counts: units IN_STOCK per variation and location, as of the local date
   Square calculated them (other states, such as WASTE or SOLD, are not on hand). Variations
   are named by SKU through the catalog, as products are. */
@canonical_select(
  'inventory_levels',
  (
    WITH variations AS (
      SELECT
        c.source,
        v.value ->> 'id' AS variation_id,
        COALESCE(NULLIF(v.value #>> '{item_variation_data,sku}', ''), v.value ->> 'id') AS product_id
      FROM @raw_lookup(@client, 'square', 'catalog') AS c
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(c.data #> '{item_data,variations}', '[]')) AS v
    )
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        CAST(@local_time(@client, r.data ->> 'calculated_at') AS DATE) AS counted_on,
        r.data ->> 'location_id' AS location_id,
        COALESCE(v.product_id, r.data ->> 'catalog_object_id') AS product_id,
        CAST(r.data ->> 'quantity' AS NUMERIC) AS on_hand
    FROM @raw_stream(@client, 'square', 'inventory_counts') AS r
    LEFT JOIN variations AS v
      ON v.source = r.source AND v.variation_id = r.data ->> 'catalog_object_id'
    WHERE
      NOT r._deleted AND r.data ->> 'state' = 'IN_STOCK'
  )
)
