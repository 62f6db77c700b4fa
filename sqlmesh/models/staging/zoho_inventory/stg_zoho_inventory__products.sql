MODEL (
  name @{client}_staging.stg_zoho_inventory__products,
  kind FULL,
  blueprints @goalpost_blueprints('zoho_inventory'),
  grain (source, product_id),
  audits (
    not_null_non_blocking(columns := (source, product_id, name)),
    unique_combination_of_columns(columns := (source, product_id))
  )
);

/* Zoho Inventory items (read whole every run): one product per item, identified by its SKU
   (the item id when it has none), as sales and stock name products. rate is the selling
   price, purchase_rate the unit cost, reorder_level the reorder point, all JSON numbers kept
   exact. Zoho records item prices in the organisation's base currency only (currency_code of
   the organisation), so that is the currency. The category is the item's category, else its
   item group. An item marked inactive (no longer sold or bought) is kept, since past sales
   and stock still name it, but without a reorder point: nothing is to be reordered. */
@canonical_select(
  'products',
  (
    WITH organizations AS (
      SELECT
        o.source,
        o.data ->> 'currency_code' AS currency
      FROM @raw_lookup(@client, 'zoho_inventory', 'organization') AS o
      WHERE
        NOT o._deleted
    )
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        COALESCE(NULLIF(BTRIM(r.data ->> 'sku'), ''), r.data ->> 'item_id') AS product_id,
        r.data ->> 'name' AS name,
        COALESCE(NULLIF(r.data ->> 'category_name', ''), NULLIF(r.data ->> 'group_name', '')) AS category,
        CAST(NULLIF(r.data ->> 'rate', '') AS NUMERIC) AS unit_price,
        CAST(NULLIF(r.data ->> 'purchase_rate', '') AS NUMERIC) AS unit_cost,
        CASE
          WHEN r.data ->> 'status' = 'inactive'
          THEN NULL
          ELSE CAST(NULLIF(r.data ->> 'reorder_level', '') AS NUMERIC)
        END AS reorder_point,
        o.currency AS currency
    FROM @raw_stream(@client, 'zoho_inventory', 'items') AS r
    LEFT JOIN organizations AS o
      ON o.source = r.source
    WHERE
      NOT r._deleted
  )
)
