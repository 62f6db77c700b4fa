MODEL (
  name @{client}_marts.monthly_sales,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (sales_month, location_id, channel),
  audits (
    not_null_non_blocking(columns := (sales_month, location_id, channel)),
    unique_combination_of_columns_non_blocking(columns := (sales_month, location_id, channel))
  )
);

/* Sales per calendar month (first day of the month), location and channel, computed from
   orders rather than summed from daily_sales so that a customer buying on several days
   counts once.
   Same conventions as daily_sales: revenue and items net of returns, orders and customers
   from sales receipts only, average_ticket = revenue / orders rounded to cents, location_name
   the current one (staging.current_locations). */
SELECT
  CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE) AS sales_month,
  CAST(o.location_id AS TEXT) AS location_id,
  CAST(MAX(n.name) AS TEXT) AS location_name,
  CAST(COALESCE(o.channel, '(none)') AS TEXT) AS channel,
  CAST(COUNT(*) FILTER(WHERE NOT o.is_return) AS BIGINT) AS orders,
  CAST(SUM(o.total) AS NUMERIC) AS revenue,
  CAST(SUM(o.items) AS NUMERIC) AS items,
  CAST(COUNT(DISTINCT o.customer_key) FILTER(WHERE NOT o.is_return) AS BIGINT) AS customers,
  CAST(
    ROUND(SUM(o.total) / NULLIF(COUNT(*) FILTER(WHERE NOT o.is_return), 0), 2) AS NUMERIC
  ) AS average_ticket,
  CAST(MIN(o.currency) AS TEXT) AS currency
FROM @{client}_staging.orders AS o
LEFT JOIN @{client}_staging.current_locations AS n
  ON n.location_id = o.location_id
GROUP BY
  CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE),
  o.location_id,
  COALESCE(o.channel, '(none)')
