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
   are named by SKU through the catalog, as products are. reorder_point is the location's own
   stock alert threshold (the variation's location_overrides[].inventory_alert_threshold for
   this location), when it has one; otherwise the product's applies. */
@canonical_select(
  'inventory_levels',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        CAST(@local_time(@client, r.data ->> 'calculated_at') AS DATE) AS counted_on,
        r.data ->> 'location_id' AS location_id,
        COALESCE(v.product_id, r.data ->> 'catalog_object_id') AS product_id,
        CAST(r.data ->> 'quantity' AS NUMERIC) AS on_hand,
        (
          SELECT
            CAST(o.value ->> 'inventory_alert_threshold' AS NUMERIC)
          FROM JSONB_ARRAY_ELEMENTS(COALESCE(v.variation #> '{item_variation_data,location_overrides}', '[]')) AS o
          WHERE
            o.value ->> 'location_id' = r.data ->> 'location_id'
          LIMIT 1
        ) AS reorder_point
    FROM @raw_stream(@client, 'square', 'inventory_counts') AS r
    LEFT JOIN @{client}_staging.stg_square__catalog_variations AS v
      ON v.source = r.source AND v.variation_id = r.data ->> 'catalog_object_id'
    WHERE
      NOT r._deleted AND r.data ->> 'state' = 'IN_STOCK'
  )
)
