MODEL (
  name @{client}_staging.stock_counts,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (counted_on, location_id, product_id)
);

/* One stock count per day, location and product, as the inventory marts read them: when
   several sources (or loads) counted the same product on the same day at the same location,
   the most recently loaded count wins (then the first source by name). reorder_point is
   the location's own, when that count's source sets one per location. */
SELECT
  CAST(counted_on AS DATE) AS counted_on,
  CAST(location_id AS TEXT) AS location_id,
  CAST(product_id AS TEXT) AS product_id,
  CAST(on_hand AS NUMERIC) AS on_hand,
  CAST(reorder_point AS NUMERIC) AS reorder_point
FROM (
  SELECT
    counted_on,
    location_id,
    product_id,
    on_hand,
    reorder_point,
    ROW_NUMBER() OVER (
      PARTITION BY location_id, product_id, counted_on ORDER BY _loaded_at DESC, source
    ) AS _rank
  FROM @{client}_staging.inventory_levels
) AS ranked
WHERE
  _rank = 1
