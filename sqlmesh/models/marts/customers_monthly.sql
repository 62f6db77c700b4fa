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

/* Customers (people across sources, see marts.customers) per calendar month, by acquisition
   source (the source that recorded them first): new customers (first sales receipt that
   month), active customers, returning ones (active and bought in an earlier month), repeat
   rate (returning / active), orders per customer and items per order of known customers'
   sales receipts. */
WITH sales AS (
  SELECT
    customer_key AS customer_id,
    order_date,
    items,
    CAST(DATE_TRUNC('month', order_date) AS DATE) AS month
  FROM @{client}_staging.orders
  WHERE
    NOT customer_key IS NULL AND NOT is_return
), firsts AS (
  SELECT
    s.customer_id,
    MIN(s.month) AS first_month,
    MIN(c.acquisition_source) AS acquisition_source
  FROM sales AS s
  JOIN @{client}_marts.customers AS c
    ON c.customer_key = s.customer_id
  GROUP BY
    s.customer_id
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
