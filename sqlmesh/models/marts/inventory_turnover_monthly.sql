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
   a count of the product there up to the month of the client's latest data (as_of,
   staging.data_as_of), so months that sold nothing show a turnover of 0 rather than no row.
   complete_month is false for that last, partial month. product_name and unit_cost (with its
   currency): staging.current_products; location_name: staging.current_locations; a product or
   location without a name shows its id.
   units_sold: net of returns (0 when nothing sold). cost_of_goods_sold = units_sold x the
   product's unit_cost (its latest known one), NULL when the cost is unknown.
   average_inventory: the mean of the month's stock counts (stock_counts of them, one a day as
   in staging.stock_counts); in a month without counts, the latest count before it
   (stock_counts 0); NULL before the first count.
   turnover = units_sold / average_inventory (NULL when that is NULL or not positive);
   days_of_inventory = calendar days in the month / turnover (NULL when turnover is NULL or
   not positive). */
WITH sales AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', order_date) AS DATE) AS month,
    location_id,
    product_id,
    SUM(quantity) AS units
  FROM @{client}_staging.dated_order_lines
  GROUP BY
    CAST(DATE_TRUNC('MONTH', order_date) AS DATE),
    location_id,
    product_id
), month_counts AS (
  SELECT
    CAST(DATE_TRUNC('MONTH', counted_on) AS DATE) AS month,
    location_id,
    product_id,
    AVG(on_hand) AS average_inventory,
    COUNT(*) AS stock_counts
  FROM @{client}_staging.stock_counts
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
  CROSS JOIN @{client}_staging.data_as_of AS a
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
    JOIN @{client}_staging.stock_counts AS c
      ON c.location_id = s.location_id AND c.product_id = s.product_id AND c.counted_on < s.month
    WHERE
      mc.month IS NULL
  ) AS ranked
  WHERE
    _rank = 1
), turnover AS (
  SELECT
    s.month,
    s.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY' <= a.as_of AS complete_month,
    EXTRACT(DAY FROM s.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY') AS days_in_month,
    s.location_id,
    COALESCE(n.name, s.location_id) AS location_name,
    s.product_id,
    COALESCE(p.name, s.product_id) AS product_name,
    COALESCE(u.units, 0) AS units,
    p.unit_cost,
    p.cost_currency AS currency,
    COALESCE(mc.stock_counts, 0) AS stock_counts,
    COALESCE(mc.average_inventory, c.on_hand) AS average_inventory
  FROM spine AS s
  CROSS JOIN @{client}_staging.data_as_of AS a
  LEFT JOIN sales AS u
    ON u.month = s.month AND u.location_id = s.location_id AND u.product_id = s.product_id
  LEFT JOIN month_counts AS mc
    ON mc.month = s.month AND mc.location_id = s.location_id AND mc.product_id = s.product_id
  LEFT JOIN carried AS c
    ON c.month = s.month AND c.location_id = s.location_id AND c.product_id = s.product_id
  LEFT JOIN @{client}_staging.current_products AS p
    ON p.product_id = s.product_id
  LEFT JOIN @{client}_staging.current_locations AS n
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
