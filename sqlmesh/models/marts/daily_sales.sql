MODEL (
  name @{client}_marts.daily_sales,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (sales_date, location_id, channel),
  audits (
    not_null_non_blocking(columns := (sales_date, location_id, channel)),
    unique_combination_of_columns_non_blocking(columns := (sales_date, location_id, channel))
  )
);

/* Sales per day (local date of the sale), location and channel ('(none)' when the source
   does not say). Returns count in revenue and items (net of returns) but not in orders or
   customers: orders = sales receipts, customers = distinct known people (across sources) with
   a sales receipt, average_ticket = revenue / orders rounded to cents (NULL on a day with only returns).
   location_name: the location's current name (staging.current_locations). */
SELECT
  CAST(o.order_date AS DATE) AS sales_date,
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
  o.order_date,
  o.location_id,
  COALESCE(o.channel, '(none)')
