MODEL (
  name @{client}_marts.daily_sales,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain @mart_grain(@client, 'daily_sales', sales_date, location_id, channel),
  audits (
    not_null_non_blocking(columns := (sales_date, location_id, channel)),
    unique_combination_of_columns_non_blocking(
      columns := @mart_grain(@client, 'daily_sales', sales_date, location_id, channel)
    )
  )
);

/* Sales per day (local date of the sale), location, channel ('(none)' when the source does
   not say) and value of each of the client's order-level dimensions (its `dimensions:` on
   orders, customers and locations: a column each, '(none)' when an order has no value), over
   the sales and return receipts (staging.sales_receipts: adjustments such as stock
   write-offs are in no figure). orders = sales receipts; revenue = their total net of the
   returns; items = units on sales receipts, items_returned = units on returns (positive);
   customers = distinct known people (across sources) with a sales receipt; average_ticket =
   revenue / orders rounded to cents (NULL on a day with only returns). location_name: the
   location's current name (staging.current_locations), else its id. */
SELECT
  CAST(o.order_date AS DATE) AS sales_date,
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
  @mart_dimensions(@client, 'daily_sales', o)
FROM @{client}_staging.sales_receipts AS o
LEFT JOIN @{client}_staging.current_locations AS n
  ON n.location_id = o.location_id
GROUP BY
  o.order_date,
  o.location_id,
  COALESCE(o.channel, '(none)'),
  @mart_dimension_keys(@client, 'daily_sales', o)
