MODEL (
  name @{client}_staging.dated_order_lines,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Order lines placed where and when their order is: each line with its order's local date,
   location and return flag (staging.orders), so that per-product figures add up to the
   per-order ones (a receipt's lines all fall on its date and at its location) and a line of a
   return receipt is known as such. */
SELECT
  CAST(l.source AS TEXT) AS source,
  CAST(l.order_id AS TEXT) AS order_id,
  CAST(o.order_date AS DATE) AS order_date,
  CAST(o.location_id AS TEXT) AS location_id,
  CAST(o.is_return AS BOOLEAN) AS is_return,
  CAST(l.product_id AS TEXT) AS product_id,
  CAST(l.quantity AS NUMERIC) AS quantity,
  CAST(l.line_total AS NUMERIC) AS line_total,
  CAST(l.currency AS TEXT) AS currency
FROM @{client}_staging.order_lines AS l
JOIN @{client}_staging.orders AS o
  ON o.source = l.source AND o.order_id = l.order_id
