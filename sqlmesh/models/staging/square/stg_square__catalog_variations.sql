MODEL (
  name @{client}_staging.stg_square__catalog_variations,
  kind VIEW,
  blueprints @goalpost_blueprints('square'),
  grain (source, variation_id)
);

/* One row per Square item variation: its latest version among the copies the catalog stream
   read. A variation comes inside its ITEM (item_data.variations) and, since the stream asks
   for ITEM_VARIATION objects too, on its own: an edit that touches only a variation (its
   price, SKU or a location's stock alert) gives it a new version and updated_at without the
   parent item's necessarily moving, so the item's embedded copy can be stale; the copy with
   the highest version wins (the standalone one on a tie). Deleted variations, and variations
   of a deleted item, are flagged is_deleted. location_overrides holds per-location settings
   (inventory_alert_threshold: the stock under which that location reorders). */
SELECT
  CAST(source AS TEXT) AS source,
  CAST(variation_id AS TEXT) AS variation_id,
  CAST(item_id AS TEXT) AS item_id,
  CAST(product_id AS TEXT) AS product_id,
  CAST(variation AS JSONB) AS variation,
  CAST(is_deleted AS BOOLEAN) AS is_deleted
FROM (
  SELECT
    copies.*,
    ROW_NUMBER() OVER (
      PARTITION BY copies.source, copies.variation_id
      ORDER BY copies.version DESC NULLS LAST, copies.standalone DESC
    ) AS _rank
  FROM (
    SELECT
      c.source,
      v.value ->> 'id' AS variation_id,
      c.data ->> 'id' AS item_id,
      COALESCE(NULLIF(v.value #>> '{item_variation_data,sku}', ''), v.value ->> 'id') AS product_id,
      v.value AS variation,
      CAST(v.value ->> 'version' AS BIGINT) AS version,
      FALSE AS standalone,
      c._deleted OR COALESCE(CAST(v.value ->> 'is_deleted' AS BOOLEAN), FALSE) AS is_deleted
    FROM @raw_lookup(@client, 'square', 'catalog') AS c
    CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(c.data #> '{item_data,variations}', '[]')) AS v
    WHERE
      c.data ->> 'type' = 'ITEM'
    UNION ALL
    SELECT
      c.source,
      c.data ->> 'id',
      c.data #>> '{item_variation_data,item_id}',
      COALESCE(NULLIF(c.data #>> '{item_variation_data,sku}', ''), c.data ->> 'id'),
      c.data,
      CAST(c.data ->> 'version' AS BIGINT),
      TRUE,
      c._deleted
    FROM @raw_lookup(@client, 'square', 'catalog') AS c
    WHERE
      c.data ->> 'type' = 'ITEM_VARIATION'
  ) AS copies
) AS ranked
WHERE
  _rank = 1
