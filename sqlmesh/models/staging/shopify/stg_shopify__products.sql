MODEL (
  name @{client}_staging.stg_shopify__products,
  kind FULL,
  blueprints @goalpost_blueprints('shopify'),
  grain (source, product_id),
  audits (
    not_null_non_blocking(columns := (source, product_id, name)),
    unique_combination_of_columns(columns := (source, product_id))
  )
);

/* Shopify products: one product per variant, identified by its SKU (the variant's gid when it
   has none), as order lines and inventory items name SKUs. A variant other than the single
   'Default Title' is named "<product> (<variant>)". The price is the variant's (a decimal
   string in the shop's currency, tax included when the shop's prices are); the cost is its
   inventory item's unitCost. Prices carry no currency: it is the unit cost's, else the
   currency of the source's orders (both are the shop's). Shopify has no reorder point. */
@canonical_select(
  'products',
  (
    WITH shop_currency AS (
      SELECT
        o.source,
        MIN(o.data #>> '{totalPriceSet,shopMoney,currencyCode}') AS currency
      FROM @raw_lookup(@client, 'shopify', 'orders') AS o
      GROUP BY
        o.source
    )
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        COALESCE(NULLIF(v.value ->> 'sku', ''), v.value ->> 'id') AS product_id,
        CASE
          WHEN COALESCE(v.value ->> 'title', 'Default Title') = 'Default Title'
          THEN r.data ->> 'title'
          ELSE CONCAT(r.data ->> 'title', ' (', v.value ->> 'title', ')')
        END AS name,
        NULLIF(r.data ->> 'productType', '') AS category,
        CAST(v.value ->> 'price' AS NUMERIC) AS unit_price,
        CAST(v.value #>> '{inventoryItem,unitCost,amount}' AS NUMERIC) AS unit_cost,
        COALESCE(v.value #>> '{inventoryItem,unitCost,currencyCode}', c.currency) AS currency
    FROM @raw_stream(@client, 'shopify', 'products') AS r
    CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(r.data #> '{variants,nodes}', '[]')) AS v
    LEFT JOIN shop_currency AS c
      ON c.source = r.source
    WHERE
      NOT r._deleted
  )
)
