MODEL (
  name @{client}_staging.stg_square__products,
  kind FULL,
  blueprints @goalpost_blueprints('square'),
  grain (source, product_id),
  audits (
    not_null_non_blocking(columns := (source, product_id, name)),
    unique_combination_of_columns(columns := (source, product_id))
  )
);

/* Square catalog: one product per item variation, identified by its SKU (the variation id when
   it has none, as Square order lines and counts refer to variations), from the latest version
   of each variation (stg_square__catalog_variations: a variation edited on its own is newer
   than its item's copy). A variation other than the default 'Regular' is named
   "<item> (<variation>)". Deleted items and variations are left out. The category is the
   item's (first) catalog category, read in the same stream. Square has no unit cost; the
   reorder point is the variation's stock alert threshold (a location's own threshold is on
   its stock counts). */
@canonical_select(
  'products',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        v.product_id AS product_id,
        CASE
          WHEN COALESCE(v.variation #>> '{item_variation_data,name}', 'Regular') = 'Regular'
          THEN r.data #>> '{item_data,name}'
          ELSE CONCAT(r.data #>> '{item_data,name}', ' (', v.variation #>> '{item_variation_data,name}', ')')
        END AS name,
        c.data #>> '{category_data,name}' AS category,
        @minor_units(v.variation #> '{item_variation_data,price_money}') AS unit_price,
        CAST(v.variation #>> '{item_variation_data,inventory_alert_threshold}' AS NUMERIC) AS reorder_point,
        v.variation #>> '{item_variation_data,price_money,currency}' AS currency
    FROM @raw_stream(@client, 'square', 'catalog') AS r
    JOIN @{client}_staging.stg_square__catalog_variations AS v
      ON v.source = r.source AND v.item_id = r.data ->> 'id'
    LEFT JOIN @raw_lookup(@client, 'square', 'catalog') AS c
      ON c.source = r.source
      AND c.data ->> 'type' = 'CATEGORY'
      AND c.data ->> 'id' = COALESCE(
        r.data #>> '{item_data,categories,0,id}', r.data #>> '{item_data,category_id}'
      )
    WHERE
      NOT r._deleted
      AND r.data ->> 'type' = 'ITEM'
      AND NOT v.is_deleted
  )
)
