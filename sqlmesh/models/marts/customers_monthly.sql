MODEL (
  name @{client}_marts.customers_monthly,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain @mart_grain(@client, 'customers_monthly', month, acquisition_source),
  audits (
    not_null_non_blocking(columns := (month, acquisition_source)),
    unique_combination_of_columns_non_blocking(
      columns := @mart_grain(@client, 'customers_monthly', month, acquisition_source)
    )
  )
);

/* Customers (people across sources, see marts.customers) per calendar month, by acquisition
   source (the source that recorded them first) and value of each of the client's dimensions
   on customers: new customers (first sales receipt that month), active customers, returning
   ones (active and bought in an earlier month), repeat rate (returning / active), orders (the
   known customers' sales receipts: a part of monthly_sales' orders, which count anonymous
   sales too), orders per customer and items per order of those receipts. Adjustments are no
   purchase (staging.sales_receipts). complete_month as in monthly_sales: false for a month
   the data does not cover to its end, which is never "the latest month". */
WITH sales AS (
  SELECT
    *,
    CAST(DATE_TRUNC('month', order_date) AS DATE) AS month
  FROM @{client}_staging.sales_receipts
  WHERE
    NOT customer_key IS NULL AND NOT is_return
), firsts AS (
  SELECT
    s.customer_key,
    MIN(s.month) AS first_month,
    MIN(c.acquisition_source) AS acquisition_source
  FROM sales AS s
  JOIN @{client}_marts.customers AS c
    ON c.customer_key = s.customer_key
  GROUP BY
    s.customer_key
)
SELECT
  CAST(s.month AS DATE) AS month,
  CAST(s.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY' <= MAX(a.last_complete_date) AS BOOLEAN)
    AS complete_month,
  CAST(f.acquisition_source AS TEXT) AS acquisition_source,
  CAST(COUNT(DISTINCT s.customer_key) FILTER(WHERE f.first_month = s.month) AS BIGINT)
    AS new_customers,
  CAST(COUNT(DISTINCT s.customer_key) AS BIGINT) AS active_customers,
  CAST(COUNT(DISTINCT s.customer_key) FILTER(WHERE f.first_month < s.month) AS BIGINT)
    AS returning_customers,
  CAST(
    ROUND(
      COUNT(DISTINCT s.customer_key) FILTER(WHERE f.first_month < s.month) * 1.0
      / COUNT(DISTINCT s.customer_key),
      4
    ) AS NUMERIC
  ) AS repeat_rate,
  CAST(COUNT(*) AS BIGINT) AS orders,
  CAST(ROUND(COUNT(*) * 1.0 / COUNT(DISTINCT s.customer_key), 4) AS NUMERIC)
    AS orders_per_customer,
  CAST(ROUND(SUM(s.items) / COUNT(*), 4) AS NUMERIC) AS items_per_order,
  @mart_dimensions(@client, 'customers_monthly', s)
FROM sales AS s
JOIN firsts AS f
  ON f.customer_key = s.customer_key
CROSS JOIN @{client}_staging.data_as_of AS a
GROUP BY
  s.month,
  f.acquisition_source,
  @mart_dimension_keys(@client, 'customers_monthly', s)
