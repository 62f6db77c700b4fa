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
   with nothing on hand (on_hand <= 0) form one episode. started_on = its first empty count;
   ended_on = the next count with stock (NULL while ongoing); days = ended_on - started_on,
   or as_of - started_on while ongoing (as_of = the client's latest local date of a sale or a
   count, as in inventory_status). Counts are all we know: the shelf may have emptied before
   the first empty count and been refilled before the count that ends the episode.
   product_name: as in product_sales_daily (products, else the latest sales line).
   estimated_units_lost = avg_daily_units_before x days, 1 decimal, where
   avg_daily_units_before = units sold there, net of returns, in the 28 days before started_on
   (started_on - 28 .. started_on - 1) / 28, 0 if negative; days without sales count as zero. */
WITH counts AS (
  SELECT
    counted_on,
    location_id,
    product_id,
    on_hand
  FROM (
    SELECT
      counted_on,
      location_id,
      product_id,
      on_hand,
      ROW_NUMBER() OVER (
        PARTITION BY location_id, product_id, counted_on ORDER BY _loaded_at DESC, source
      ) AS _rank
    FROM @{client}_staging.inventory_levels
  ) AS ranked
  WHERE
    _rank = 1
), as_of AS (
  SELECT
    GREATEST(
      (SELECT MAX(order_date) FROM @{client}_staging.orders),
      (SELECT MAX(counted_on) FROM counts)
    ) AS as_of
), numbered AS (
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
  FROM counts
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
  JOIN @{client}_staging.orders AS o
    ON o.location_id = e.location_id
    AND o.order_date BETWEEN e.started_on - 28 AND e.started_on - 1
  JOIN @{client}_staging.order_lines AS l
    ON l.source = o.source AND l.order_id = o.order_id AND l.product_id = e.product_id
  GROUP BY
    e.location_id,
    e.product_id,
    e.started_on
), products AS (
  SELECT
    product_id,
    (ARRAY_AGG(name ORDER BY _loaded_at DESC, source) FILTER(WHERE name IS NOT NULL))[1] AS name
  FROM @{client}_staging.products
  GROUP BY
    product_id
), line_names AS (
  SELECT
    product_id,
    (ARRAY_AGG(product_name ORDER BY ordered_at DESC, order_id DESC)
      FILTER(WHERE product_name IS NOT NULL))[1] AS name
  FROM @{client}_staging.order_lines
  GROUP BY
    product_id
), location_names AS (
  SELECT
    location_id,
    name AS location_name
  FROM (
    SELECT
      location_id,
      name,
      ROW_NUMBER() OVER (PARTITION BY location_id ORDER BY _loaded_at DESC, source) AS _rank
    FROM @{client}_staging.locations
  ) AS ranked
  WHERE
    _rank = 1
), measured AS (
  SELECT
    e.location_id,
    n.location_name,
    e.product_id,
    COALESCE(p.name, ln.name) AS product_name,
    e.started_on,
    e.ended_on,
    e.empty_counts,
    COALESCE(e.ended_on, a.as_of) - e.started_on AS days,
    GREATEST(COALESCE(b.units, 0), 0) / 28 AS daily_units
  FROM episodes AS e
  CROSS JOIN as_of AS a
  LEFT JOIN prior_sales AS b
    ON b.location_id = e.location_id
    AND b.product_id = e.product_id
    AND b.started_on = e.started_on
  LEFT JOIN products AS p
    ON p.product_id = e.product_id
  LEFT JOIN line_names AS ln
    ON ln.product_id = e.product_id
  LEFT JOIN location_names AS n
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
