MODEL (
  name @{client}_marts.monthly_sales,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain @mart_grain(@client, 'monthly_sales', sales_month, location_id, channel),
  audits (
    not_null_non_blocking(columns := (sales_month, location_id, channel)),
    unique_combination_of_columns_non_blocking(
      columns := @mart_grain(@client, 'monthly_sales', sales_month, location_id, channel)
    )
  )
);

/* Sales per calendar month (first day of the month), location, channel and value of each of
   the client's order-level dimensions, computed from the receipts rather than summed from
   daily_sales so that a customer buying on several days counts once. Same conventions as
   daily_sales (adjustments left out; orders and customers from sales receipts, revenue net of
   returns, items and items_returned apart; location_name the current one, else the id).
   complete_month: false for a month the data does not cover to its last day (the month of
   the last complete day, staging.data_as_of, when that day is not its last, and any later
   one): a partial month, which dashboards mark and never take for "the latest month". */
SELECT
  CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE) AS sales_month,
  CAST(
    DATE_TRUNC('MONTH', o.order_date) + INTERVAL '1 MONTH' - INTERVAL '1 DAY'
    <= MAX(a.last_complete_date) AS BOOLEAN
  ) AS complete_month,
  CAST(o.location_id AS TEXT) AS location_id,
  CAST(COALESCE(MAX(n.name), o.location_id) AS TEXT) AS location_name,
  CAST(COALESCE(o.channel, '(none)') AS TEXT) AS channel,
  CAST(COUNT(*) FILTER(WHERE NOT o.is_return) AS BIGINT) AS orders,
  CAST(SUM(o.total) AS NUMERIC) AS revenue,
  CAST(COALESCE(SUM(o.items) FILTER(WHERE NOT o.is_return), 0) AS NUMERIC) AS items,
  CAST(COALESCE(-SUM(o.items) FILTER(WHERE o.is_return), 0) AS NUMERIC) AS items_returned,
  CAST(COUNT(DISTINCT o.customer_key) FILTER(WHERE NOT o.is_return) AS BIGINT) AS customers,
  CAST(
    ROUND(SUM(o.total) / NULLIF(COUNT(*) FILTER(WHERE NOT o.is_return), 0), 2) AS NUMERIC
  ) AS average_ticket,
  CAST(MIN(o.currency) AS TEXT) AS currency,
  @mart_dimensions(@client, 'monthly_sales', o)
FROM @{client}_staging.sales_receipts AS o
CROSS JOIN @{client}_staging.data_as_of AS a
LEFT JOIN @{client}_staging.current_locations AS n
  ON n.location_id = o.location_id
GROUP BY
  CAST(DATE_TRUNC('MONTH', o.order_date) AS DATE),
  DATE_TRUNC('MONTH', o.order_date),
  o.location_id,
  COALESCE(o.channel, '(none)'),
  @mart_dimension_keys(@client, 'monthly_sales', o)
