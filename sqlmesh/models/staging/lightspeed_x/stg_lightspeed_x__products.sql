MODEL (
  name @{client}_staging.stg_lightspeed_x__products,
  kind FULL,
  blueprints @goalpost_blueprints('lightspeed_x'),
  grain (source, product_id),
  audits (
    not_null_non_blocking(columns := (source, product_id, name)),
    unique_combination_of_columns(columns := (source, product_id))
  )
);

/* Lightspeed X-Series products, identified by SKU (the product id when it has none). The
   price is price_including_tax (the shelf price), the cost the supply price. X-Series keeps
   reorder points per outlet on inventory records: the product's is the largest of them.
   Prices carry no currency: it is the retailer's, the currency of its outlets. Deleted
   products are left out. */
@canonical_select(
  'products',
  (
    WITH reorder AS (
      SELECT
        i.source,
        i.data ->> 'product_id' AS id,
        MAX(CAST(i.data ->> 'reorder_point' AS NUMERIC)) AS reorder_point
      FROM @raw_lookup(@client, 'lightspeed_x', 'inventory') AS i
      WHERE
        NOT i._deleted
      GROUP BY
        i.source,
        i.data ->> 'product_id'
    ), currencies AS (
      SELECT
        o.source,
        MIN(o.data ->> 'currency') AS currency
      FROM @raw_lookup(@client, 'lightspeed_x', 'outlets') AS o
      GROUP BY
        o.source
    )
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        COALESCE(NULLIF(r.data ->> 'sku', ''), r.data ->> 'id') AS product_id,
        r.data ->> 'name' AS name,
        NULLIF(r.data #>> '{product_type,name}', '') AS category,
        CAST(r.data ->> 'price_including_tax' AS NUMERIC) AS unit_price,
        CAST(r.data ->> 'supply_price' AS NUMERIC) AS unit_cost,
        o.reorder_point AS reorder_point,
        c.currency AS currency
    FROM @raw_stream(@client, 'lightspeed_x', 'products') AS r
    LEFT JOIN reorder AS o
      ON o.source = r.source AND o.id = r.data ->> 'id'
    LEFT JOIN currencies AS c
      ON c.source = r.source
    WHERE
      NOT r._deleted
  )
)
