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
   location of its order, so a day's revenue here adds up to daily_sales.
   Returns are netted as in daily_sales: units_sold and revenue are net of returned goods
   (negative lines), units_returned is what came back (positive). sales_lines and orders count
   the product's positive lines and the receipts holding them among sales receipts only (not
   return receipts), like daily_sales' orders. average_unit_price = what a unit went for after
   discounts on those lines (their amount / their units), rounded to cents; NULL on a day with
   only returns. Name and category are the latest values products knows (each attribute its
   latest non-empty one across sources); a product unknown there is named as on its latest
   sales line. */
WITH products AS (
  SELECT
    product_id,
    (ARRAY_AGG(name ORDER BY _loaded_at DESC, source) FILTER(WHERE name IS NOT NULL))[1] AS name,
    (ARRAY_AGG(category ORDER BY _loaded_at DESC, source) FILTER(WHERE category IS NOT NULL))[1]
      AS category
  FROM @{client}_staging.products
  GROUP BY
    product_id
), location_names AS (
  SELECT
    location_id,
    name AS location_name
  FROM (
    SELECT
      location_id,
      name,
      ROW_NUMBER() OVER (PARTITION BY location_id ORDER BY _loaded_at DESC, source) AS _rank
    FROM @{client}_staging.locations
  ) AS ranked
  WHERE
    _rank = 1
), lines AS (
  SELECT
    o.order_date,
    o.location_id,
    o.is_return,
    l.order_id,
    l.source,
    l.product_id,
    l.product_name,
    l.ordered_at,
    l.quantity,
    l.line_total,
    l.currency
  FROM @{client}_staging.order_lines AS l
  JOIN @{client}_staging.orders AS o
    ON o.source = l.source AND o.order_id = l.order_id
), line_names AS (
  SELECT
    product_id,
    (ARRAY_AGG(product_name ORDER BY ordered_at DESC, order_id DESC)
      FILTER(WHERE product_name IS NOT NULL))[1] AS name
  FROM lines
  GROUP BY
    product_id
)
SELECT
  CAST(s.order_date AS DATE) AS sales_date,
  CAST(s.location_id AS TEXT) AS location_id,
  CAST(MAX(n.location_name) AS TEXT) AS location_name,
  CAST(s.product_id AS TEXT) AS product_id,
  CAST(COALESCE(MAX(p.name), MAX(ln.name)) AS TEXT) AS product_name,
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
FROM lines AS s
LEFT JOIN products AS p
  ON p.product_id = s.product_id
LEFT JOIN line_names AS ln
  ON ln.product_id = s.product_id
LEFT JOIN location_names AS n
  ON n.location_id = s.location_id
GROUP BY
  s.order_date,
  s.location_id,
  s.product_id
