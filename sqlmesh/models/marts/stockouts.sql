MODEL (
  name @{client}_marts.stockouts,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (location_id, product_id, started_on),
  audits (
    not_null_non_blocking(columns := (location_id, product_id, started_on, days)),
    unique_combination_of_columns_non_blocking(columns := (location_id, product_id, started_on))
  )
);

/* Stock-out episodes per location and product, seen through stock counts: consecutive counts
   (one a day, staging.stock_counts) with nothing on hand (on_hand <= 0) form one episode.
   started_on = its first empty count; ended_on = the next count with stock (NULL while
   ongoing); days = ended_on - started_on, or as_of - started_on while ongoing (as_of = the
   client's latest local date of a sale or a count, staging.data_as_of). Counts are all we
   know: the shelf may have emptied before the first empty count and been refilled before the
   count that ends the episode.
   product_name: staging.current_products; location_name: staging.current_locations; a
   product or location without a name shows its id.
   estimated_units_lost = avg_daily_units_before x days, 1 decimal, where
   avg_daily_units_before = units sold there, net of returns, in the 28 days before started_on
   (started_on - 28 .. started_on - 1) / 28, 0 if negative; days without sales count as zero. */
WITH numbered AS (
  /* restocks = counts with stock so far: constant along a run of empty counts, and one more
     on the count with stock that ends it. */
  SELECT
    counted_on,
    location_id,
    product_id,
    on_hand,
    SUM(CASE WHEN on_hand > 0 THEN 1 ELSE 0 END) OVER (
      PARTITION BY location_id, product_id ORDER BY counted_on
    ) AS restocks
  FROM @{client}_staging.stock_counts
), episodes AS (
  SELECT
    e.location_id,
    e.product_id,
    MIN(e.counted_on) AS started_on,
    COUNT(*) AS empty_counts,
    MIN(r.counted_on) AS ended_on
  FROM numbered AS e
  LEFT JOIN numbered AS r
    ON r.location_id = e.location_id
    AND r.product_id = e.product_id
    AND r.restocks = e.restocks + 1
    AND r.on_hand > 0
  WHERE
    e.on_hand <= 0
  GROUP BY
    e.location_id,
    e.product_id,
    e.restocks
), prior_sales AS (
  SELECT
    e.location_id,
    e.product_id,
    e.started_on,
    SUM(l.quantity) AS units
  FROM episodes AS e
  JOIN @{client}_staging.dated_order_lines AS l
    ON l.location_id = e.location_id
    AND l.product_id = e.product_id
    AND l.order_date BETWEEN e.started_on - 28 AND e.started_on - 1
  GROUP BY
    e.location_id,
    e.product_id,
    e.started_on
), measured AS (
  SELECT
    e.location_id,
    COALESCE(n.name, e.location_id) AS location_name,
    e.product_id,
    COALESCE(p.name, e.product_id) AS product_name,
    e.started_on,
    e.ended_on,
    e.empty_counts,
    COALESCE(e.ended_on, a.as_of) - e.started_on AS days,
    GREATEST(COALESCE(b.units, 0), 0) / 28 AS daily_units
  FROM episodes AS e
  CROSS JOIN @{client}_staging.data_as_of AS a
  LEFT JOIN prior_sales AS b
    ON b.location_id = e.location_id
    AND b.product_id = e.product_id
    AND b.started_on = e.started_on
  LEFT JOIN @{client}_staging.current_products AS p
    ON p.product_id = e.product_id
  LEFT JOIN @{client}_staging.current_locations AS n
    ON n.location_id = e.location_id
)
SELECT
  CAST(location_id AS TEXT) AS location_id,
  CAST(location_name AS TEXT) AS location_name,
  CAST(product_id AS TEXT) AS product_id,
  CAST(product_name AS TEXT) AS product_name,
  CAST(started_on AS DATE) AS started_on,
  CAST(ended_on AS DATE) AS ended_on,
  CAST(ended_on IS NULL AS BOOLEAN) AS ongoing,
  CAST(days AS INT) AS days,
  CAST(empty_counts AS BIGINT) AS empty_counts,
  CAST(ROUND(daily_units, 4) AS NUMERIC) AS avg_daily_units_before,
  CAST(ROUND(daily_units * days, 1) AS NUMERIC) AS estimated_units_lost
FROM measured
