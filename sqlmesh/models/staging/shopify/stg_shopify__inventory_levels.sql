MODEL (
  name @{client}_staging.stg_shopify__inventory_levels,
  kind FULL,
  blueprints @goalpost_blueprints('shopify'),
  grain (source, counted_on, location_id, product_id),
  audits (
    not_null(columns := (source, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns(columns := (source, counted_on, location_id, product_id))
  )
);

/* Shopify inventory: each inventory item (named by its SKU, as products are) with its levels
   per location. Shopify only gives the current quantities, and the stream is read whole each
   run, so this is the latest level per item and location, not a history: on_hand is the
   'on_hand' quantity ('available' if missing), counted_on the local date that quantity last
   changed (its updatedAt, else the level's). */
@canonical_select(
  'inventory_levels',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        CAST(
          @local_time(@client, COALESCE(q.updated_at, lvl.value ->> 'updatedAt')) AS DATE
        ) AS counted_on,
        lvl.value #>> '{location,id}' AS location_id,
        COALESCE(NULLIF(r.data ->> 'sku', ''), r.data ->> 'id') AS product_id,
        q.quantity AS on_hand
    FROM @raw_stream(@client, 'shopify', 'inventory_items') AS r
    CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(r.data #> '{inventoryLevels,nodes}', '[]')) AS lvl
    CROSS JOIN LATERAL (
      SELECT
        CAST(x.value ->> 'quantity' AS NUMERIC) AS quantity,
        x.value ->> 'updatedAt' AS updated_at
      FROM JSONB_ARRAY_ELEMENTS(COALESCE(lvl.value -> 'quantities', '[]')) AS x
      WHERE
        x.value ->> 'name' IN ('on_hand', 'available')
      ORDER BY
        x.value ->> 'name' = 'on_hand' DESC
      LIMIT 1
    ) AS q
    WHERE
      NOT r._deleted
  )
)
