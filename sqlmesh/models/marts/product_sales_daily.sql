MODEL (
  name @{client}_marts.product_sales_daily,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (sales_date, location_id, product_id),
  audits (
    not_null_non_blocking(columns := (sales_date, location_id, product_id)),
    unique_combination_of_columns_non_blocking(columns := (sales_date, location_id, product_id))
  )
);

/* Sales per day (local date of the sale), location and product. A line takes the date and
   location of its order (staging.dated_order_lines), so a day's revenue here adds up to
   daily_sales.
   Returns are netted as in daily_sales: units_sold and revenue are net of returned goods
   (negative lines), units_returned is what came back (positive). sales_lines and orders count
   the product's positive lines and the receipts holding them among sales receipts only (not
   return receipts), like daily_sales' orders. average_unit_price = what a unit went for after
   discounts on those lines (their amount / their units), rounded to cents; NULL on a day with
   only returns. product_name and category: the product's current ones
   (staging.current_products: what products knows, else the name on its latest sales line);
   location_name: the location's current one (staging.current_locations). */
SELECT
  CAST(s.order_date AS DATE) AS sales_date,
  CAST(s.location_id AS TEXT) AS location_id,
  CAST(MAX(n.name) AS TEXT) AS location_name,
  CAST(s.product_id AS TEXT) AS product_id,
  CAST(MAX(p.name) AS TEXT) AS product_name,
  CAST(MAX(p.category) AS TEXT) AS category,
  CAST(SUM(s.quantity) AS NUMERIC) AS units_sold,
  CAST(COALESCE(-SUM(s.quantity) FILTER(WHERE s.quantity < 0), 0) AS NUMERIC) AS units_returned,
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
  CAST(MIN(s.currency) AS TEXT) AS currency
FROM @{client}_staging.dated_order_lines AS s
LEFT JOIN @{client}_staging.current_products AS p
  ON p.product_id = s.product_id
LEFT JOIN @{client}_staging.current_locations AS n
  ON n.location_id = s.location_id
GROUP BY
  s.order_date,
  s.location_id,
  s.product_id
