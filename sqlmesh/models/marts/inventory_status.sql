MODEL (
  name @{client}_marts.inventory_status,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (location_id, product_id),
  audits (
    not_null_non_blocking(columns := (as_of, location_id, product_id, on_hand, reorder_point)),
    unique_combination_of_columns_non_blocking(columns := (location_id, product_id))
  )
);

/* Stock of every product at every location that has a stock count, as of the client's latest
   data: as_of = the latest local date of a sale or a stock count (staging.data_as_of).
   on_hand is the latest count (last_counted_on; a day's count as in staging.stock_counts),
   not adjusted for sales since.
   product_name and the product's own reorder point: staging.current_products; location_name:
   staging.current_locations; a product or location without a name shows its id.
   avg_daily_units = units sold at the location, net of returns, over the 28 days ending at
   as_of, divided by 28 (days without sales count as zero; 4 decimals).
   days_of_cover = on_hand (0 if negative) / avg_daily_units, 1 decimal; NULL when nothing
   (net) was sold in those 28 days.
   reorder_point = the location's own, from its latest count (reorder_point_source
   'location': a source that sets one per location, such as Square's location overrides),
   else the product's own ('product') when products gives one, else a week of average
   sales, CEIL(avg_daily_units x 7) ('derived', 0 when nothing sold).
   below_reorder: on_hand < reorder_point, strictly, as the canonical reorder_point is "the
   units under which to reorder" (so a derived point of 0 never flags an idle product). */
WITH latest AS (
  SELECT DISTINCT ON (location_id, product_id)
    counted_on,
    location_id,
    product_id,
    on_hand,
    reorder_point
  FROM @{client}_staging.stock_counts
  ORDER BY
    location_id,
    product_id,
    counted_on DESC
), sold AS (
  SELECT
    l.location_id,
    l.product_id,
    SUM(l.quantity) AS units
  FROM @{client}_staging.dated_order_lines AS l
  CROSS JOIN @{client}_staging.data_as_of AS a
  WHERE
    l.order_date BETWEEN a.as_of - 27 AND a.as_of
  GROUP BY
    l.location_id,
    l.product_id
), status AS (
  SELECT
    a.as_of,
    c.location_id,
    COALESCE(n.name, c.location_id) AS location_name,
    c.product_id,
    COALESCE(p.name, c.product_id) AS product_name,
    c.counted_on,
    c.on_hand,
    COALESCE(s.units, 0) AS units,
    COALESCE(
      c.reorder_point, p.reorder_point, CEIL(GREATEST(COALESCE(s.units, 0), 0) * 7 / 28)
    ) AS reorder_point,
    CASE
      WHEN c.reorder_point IS NOT NULL
      THEN 'location'
      WHEN p.reorder_point IS NOT NULL
      THEN 'product'
      ELSE 'derived'
    END AS reorder_point_source
  FROM latest AS c
  CROSS JOIN @{client}_staging.data_as_of AS a
  LEFT JOIN sold AS s
    ON s.location_id = c.location_id AND s.product_id = c.product_id
  LEFT JOIN @{client}_staging.current_products AS p
    ON p.product_id = c.product_id
  LEFT JOIN @{client}_staging.current_locations AS n
    ON n.location_id = c.location_id
)
SELECT
  CAST(as_of AS DATE) AS as_of,
  CAST(location_id AS TEXT) AS location_id,
  CAST(location_name AS TEXT) AS location_name,
  CAST(product_id AS TEXT) AS product_id,
  CAST(product_name AS TEXT) AS product_name,
  CAST(counted_on AS DATE) AS last_counted_on,
  CAST(on_hand AS NUMERIC) AS on_hand,
  CAST(units AS NUMERIC) AS units_sold_28d,
  CAST(ROUND(units / 28, 4) AS NUMERIC) AS avg_daily_units,
  CAST(CASE WHEN units > 0 THEN ROUND(GREATEST(on_hand, 0) * 28 / units, 1) END AS NUMERIC)
    AS days_of_cover,
  CAST(reorder_point AS NUMERIC) AS reorder_point,
  CAST(reorder_point_source AS TEXT) AS reorder_point_source,
  CAST(on_hand < reorder_point AS BOOLEAN) AS below_reorder
FROM status
