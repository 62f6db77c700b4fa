MODEL (
  name @{client}_marts.inventory_turnover_monthly,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (month, location_id, product_id),
  audits (
    not_null_non_blocking(columns := (month, location_id, product_id, units_sold)),
    unique_combination_of_columns_non_blocking(columns := (month, location_id, product_id))
  )
);

/* Inventory turnover per calendar month (first day), location and product, for every product
   and location that has a stock count: one row for every month from the first with a sale or
   a count of the product there up to the month of the client's latest data (as_of, as in
   inventory_status), so months that sold nothing show a turnover of 0 rather than no row.
   complete_month is false for that last, partial month. product_name: as in
   product_sales_daily (products, else the latest sales line).
   units_sold: net of returns (0 when nothing sold). cost_of_goods_sold = units_sold x the
   product's unit_cost (its latest known one), NULL when the cost is unknown.
   average_inventory: the mean of the month's stock counts (stock_counts of them); in a month
   without counts, the latest count before it (stock_counts 0); NULL before the first count.
   turnover = units_sold / average_inventory (NULL when that is NULL or not positive);
   days_of_inventory = calendar days in the month / turnover (NULL when turnover is NULL or
   not positive). */
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
), sales AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE) AS month,
    o.location_id,
    l.product_id,
    SUM(l.quantity) AS units
  FROM @{client}_staging.order_lines AS l
  JOIN @{client}_staging.orders AS o
    ON o.source = l.source AND o.order_id = l.order_id
  GROUP BY
    CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE),
    o.location_id,
    l.product_id
), month_counts AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', counted_on) AS DATE) AS month,
    location_id,
    product_id,
    AVG(on_hand) AS average_inventory,
    COUNT(*) AS stock_counts
  FROM counts
  GROUP BY
    CAST(DATE_TRUNC('MONTH', counted_on) AS DATE),
    location_id,
    product_id
), firsts AS (
  SELECT
    location_id,
    product_id,
    MIN(month) AS first_month
  FROM (
    SELECT month, location_id, product_id, FALSE AS counted FROM sales
    UNION ALL
    SELECT month, location_id, product_id, TRUE AS counted FROM month_counts
  ) AS activity
  GROUP BY
    location_id,
    product_id
  HAVING
    BOOL_OR(counted)
), spine AS (
  SELECT
    f.location_id,
    f.product_id,
    CAST(m.month AS DATE) AS month
  FROM firsts AS f
  CROSS JOIN as_of AS a
  CROSS JOIN GENERATE_SERIES(
    f.first_month, CAST(DATE_TRUNC('MONTH', a.as_of) AS DATE), INTERVAL '1 MONTH'
  ) AS m(month)
), carried AS (
  /* For months without counts: the latest count before the month. */
  SELECT
    month,
    location_id,
    product_id,
    on_hand
  FROM (
    SELECT
      s.month,
      s.location_id,
      s.product_id,
      c.on_hand,
      ROW_NUMBER() OVER (
        PARTITION BY s.month, s.location_id, s.product_id ORDER BY c.counted_on DESC
      ) AS _rank
    FROM spine AS s
    LEFT JOIN month_counts AS mc
      ON mc.month = s.month AND mc.location_id = s.location_id AND mc.product_id = s.product_id
    JOIN counts AS c
      ON c.location_id = s.location_id AND c.product_id = s.product_id AND c.counted_on < s.month
    WHERE
      mc.month IS NULL
  ) AS ranked
  WHERE
    _rank = 1
), products AS (
  SELECT
    product_id,
    (ARRAY_AGG(name ORDER BY _loaded_at DESC, source) FILTER(WHERE name IS NOT NULL))[1] AS name,
    (ARRAY_AGG(unit_cost ORDER BY _loaded_at DESC, source) FILTER(WHERE unit_cost IS NOT NULL))[1]
      AS unit_cost,
    (ARRAY_AGG(currency ORDER BY _loaded_at DESC, source) FILTER(WHERE unit_cost IS NOT NULL))[1]
      AS currency
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
), turnover AS (
  SELECT
    s.month,
    s.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY' <= a.as_of AS complete_month,
    EXTRACT(DAY FROM s.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY') AS days_in_month,
    s.location_id,
    n.location_name,
    s.product_id,
    COALESCE(p.name, ln.name) AS product_name,
    COALESCE(u.units, 0) AS units,
    p.unit_cost,
    p.currency,
    COALESCE(mc.stock_counts, 0) AS stock_counts,
    COALESCE(mc.average_inventory, c.on_hand) AS average_inventory
  FROM spine AS s
  CROSS JOIN as_of AS a
  LEFT JOIN sales AS u
    ON u.month = s.month AND u.location_id = s.location_id AND u.product_id = s.product_id
  LEFT JOIN month_counts AS mc
    ON mc.month = s.month AND mc.location_id = s.location_id AND mc.product_id = s.product_id
  LEFT JOIN carried AS c
    ON c.month = s.month AND c.location_id = s.location_id AND c.product_id = s.product_id
  LEFT JOIN products AS p
    ON p.product_id = s.product_id
  LEFT JOIN line_names AS ln
    ON ln.product_id = s.product_id
  LEFT JOIN location_names AS n
    ON n.location_id = s.location_id
)
SELECT
  CAST(month AS DATE) AS month,
  CAST(complete_month AS BOOLEAN) AS complete_month,
  CAST(location_id AS TEXT) AS location_id,
  CAST(location_name AS TEXT) AS location_name,
  CAST(product_id AS TEXT) AS product_id,
  CAST(product_name AS TEXT) AS product_name,
  CAST(units AS NUMERIC) AS units_sold,
  CAST(unit_cost AS NUMERIC) AS unit_cost,
  CAST(ROUND(units * unit_cost, 2) AS NUMERIC) AS cost_of_goods_sold,
  CAST(currency AS TEXT) AS currency,
  CAST(stock_counts AS BIGINT) AS stock_counts,
  CAST(ROUND(average_inventory, 2) AS NUMERIC) AS average_inventory,
  CAST(
    CASE WHEN average_inventory > 0 THEN ROUND(units / average_inventory, 4) END AS NUMERIC
  ) AS turnover,
  CAST(
    CASE
      WHEN average_inventory > 0 AND units > 0
      THEN ROUND(days_in_month * average_inventory / units, 1)
    END AS NUMERIC
  ) AS days_of_inventory
FROM turnover
