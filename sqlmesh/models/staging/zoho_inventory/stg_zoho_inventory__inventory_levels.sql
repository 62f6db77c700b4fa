MODEL (
  name @{client}_staging.stg_zoho_inventory__inventory_levels,
  kind FULL,
  blueprints @goalpost_blueprints('zoho_inventory'),
  grain (source, counted_on, location_id, product_id),
  audits (
    not_null(columns := (source, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns(columns := (source, counted_on, location_id, product_id))
  )
);

/* Zoho Inventory stock per item and location: the item detail's locations[] (the current API:
   location_stock_on_hand, a decimal string) or, on an organisation not yet on Locations, its
   warehouses[] (warehouse_stock_on_hand). Zoho gives only current levels, not dated counts,
   and raw keeps one row per item, rewritten (with a new _loaded_at) only when the item detail
   changes. So a level is dated the local day its row was last loaded: it has read the same
   on every run since. on_hand is the location's stock on hand, before committed orders are
   taken off. Items are named by SKU (the item id when none), as products are, and locations
   by Zoho's id. An inventory item whose detail has neither array is not an empty stock: it
   gives a row without location and quantity, which the blocking not_null audit refuses, so
   that a change in Zoho's answer stops the build instead of emptying inventory. */
@canonical_select(
  'inventory_levels',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        CAST(@local_time(@client, r._loaded_at) AS DATE) AS counted_on,
        COALESCE(w.value ->> 'location_id', w.value ->> 'warehouse_id') AS location_id,
        COALESCE(NULLIF(BTRIM(r.data ->> 'sku'), ''), r.data ->> 'item_id') AS product_id,
        CAST(
          COALESCE(w.value ->> 'location_stock_on_hand', w.value ->> 'warehouse_stock_on_hand') AS NUMERIC
        ) AS on_hand
    FROM @raw_stream(@client, 'zoho_inventory', 'item_stock') AS r
    LEFT JOIN LATERAL JSONB_ARRAY_ELEMENTS(
      COALESCE(r.data -> 'locations', r.data -> 'warehouses')
    ) AS w
      ON TRUE
    WHERE
      NOT r._deleted
      AND (
        w.value IS NOT NULL
        OR (
          r.data -> 'locations' IS NULL
          AND r.data -> 'warehouses' IS NULL
          AND COALESCE(r.data ->> 'item_type', 'inventory') = 'inventory'
        )
      )
  )
)
