MODEL (
  name @{client}_marts.customers_monthly,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (month, acquisition_source),
  audits (
    not_null_non_blocking(columns := (month, acquisition_source)),
    unique_combination_of_columns_non_blocking(columns := (month, acquisition_source))
  )
);

/* Customers per calendar month, by the source that first recorded them (acquisition): new
   customers (first sales receipt that month), active customers, returning ones (active and
   bought in an earlier month), repeat rate (returning / active), orders per customer and
   items per order of known customers' sales receipts. */
WITH sales AS (
  SELECT
    customer_id,
    source,
    order_date,
    items,
    CAST(DATE_TRUNC('month', order_date) AS DATE) AS month
  FROM @{client}_staging.orders
  WHERE
    customer_id IS NOT NULL AND NOT is_return
), firsts AS (
  SELECT
    customer_id,
    MIN(month) AS first_month,
    MIN(source) FILTER(WHERE order_date = first_day) AS acquisition_source
  FROM (
    SELECT
      *,
      MIN(order_date) OVER (PARTITION BY customer_id) AS first_day
    FROM sales
  ) AS dated
  GROUP BY
    customer_id
)
SELECT
  CAST(s.month AS DATE) AS month,
  CAST(f.acquisition_source AS TEXT) AS acquisition_source,
  CAST(COUNT(DISTINCT s.customer_id) FILTER(WHERE f.first_month = s.month) AS BIGINT)
    AS new_customers,
  CAST(COUNT(DISTINCT s.customer_id) AS BIGINT) AS active_customers,
  CAST(COUNT(DISTINCT s.customer_id) FILTER(WHERE f.first_month < s.month) AS BIGINT)
    AS returning_customers,
  CAST(
    ROUND(
      COUNT(DISTINCT s.customer_id) FILTER(WHERE f.first_month < s.month) * 1.0
      / COUNT(DISTINCT s.customer_id),
      4
    ) AS NUMERIC
  ) AS repeat_rate,
  CAST(ROUND(COUNT(*) * 1.0 / COUNT(DISTINCT s.customer_id), 4) AS NUMERIC)
    AS orders_per_customer,
  CAST(ROUND(SUM(s.items) / COUNT(*), 4) AS NUMERIC) AS items_per_order
FROM sales AS s
JOIN firsts AS f
  ON f.customer_id = s.customer_id
GROUP BY
  s.month,
  f.acquisition_source
