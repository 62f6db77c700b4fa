MODEL (
  name @{client}_marts.product_sales_daily,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain @mart_grain(@client, 'product_sales_daily', sales_date, location_id, product_id),
  audits (
    not_null_non_blocking(columns := (sales_date, location_id, product_id)),
    unique_combination_of_columns_non_blocking(
      columns := @mart_grain(@client, 'product_sales_daily', sales_date, location_id, product_id)
    )
  )
);

/* Sales per day (local date of the sale), location, product and value of each of the
   client's dimensions (a column each, '(none)' for no value; a line takes its order's value
   of those on orders, customers and locations). A line takes the date and location of its
   order (staging.dated_order_lines: lines of sales and returns, adjustments left out), so a
   day's revenue and units here add up to daily_sales.
   units_sold: units on sales receipts (daily_sales' items); units_returned: units on returns
   (positive; daily_sales' items_returned); revenue: net of returns (negative lines).
   sales_lines and orders count the product's positive lines and the receipts holding them
   among sales receipts only, like daily_sales' orders. average_unit_price = what a unit went
   for after discounts on those lines (their amount / their units), rounded to cents; NULL on
   a day with only returns. product_name and category: the product's current ones
   (staging.current_products: what products knows, else the name on its latest sales line),
   else its id for the name; location_name: the location's current one
   (staging.current_locations), else its id. */
SELECT
  CAST(s.order_date AS DATE) AS sales_date,
  CAST(s.location_id AS TEXT) AS location_id,
  CAST(COALESCE(MAX(n.name), s.location_id) AS TEXT) AS location_name,
  CAST(s.product_id AS TEXT) AS product_id,
  CAST(COALESCE(MAX(p.name), s.product_id) AS TEXT) AS product_name,
  CAST(MAX(p.category) AS TEXT) AS category,
  CAST(COALESCE(SUM(s.quantity) FILTER(WHERE NOT s.is_return), 0) AS NUMERIC) AS units_sold,
  CAST(COALESCE(-SUM(s.quantity) FILTER(WHERE s.is_return), 0) AS NUMERIC) AS units_returned,
  CAST(SUM(s.line_total) AS NUMERIC) AS revenue,
  CAST(COUNT(*) FILTER(WHERE NOT s.is_return AND s.quantity > 0) AS BIGINT) AS sales_lines,
  CAST(
    COUNT(DISTINCT s.source || '|' || s.order_id) FILTER(WHERE NOT s.is_return AND s.quantity > 0)
    AS BIGINT
  ) AS orders,
  CAST(
    ROUND(
      SUM(s.line_total) FILTER(WHERE NOT s.is_return AND s.quantity > 0)
      / NULLIF(SUM(s.quantity) FILTER(WHERE NOT s.is_return AND s.quantity > 0), 0),
      2
    ) AS NUMERIC
  ) AS average_unit_price,
  CAST(MIN(s.currency) AS TEXT) AS currency,
  @mart_dimensions(@client, 'product_sales_daily', s)
FROM @{client}_staging.dated_order_lines AS s
LEFT JOIN @{client}_staging.current_products AS p
  ON p.product_id = s.product_id
LEFT JOIN @{client}_staging.current_locations AS n
  ON n.location_id = s.location_id
GROUP BY
  s.order_date,
  s.location_id,
  s.product_id,
  @mart_dimension_keys(@client, 'product_sales_daily', s)
