MODEL (
  name @{client}_staging.dated_order_lines,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* One row per line of a sale or return receipt, placed where and when its order is: each
   line with its order's local date, location and return flag (staging.sales_receipts), so
   that per-product figures add up to the per-order ones (a receipt's lines all fall on its
   date and at its location) and a line of a return receipt is known as such. Lines of
   adjustments (write-offs, bad-debt entries) are not here: no mart counts them as sold or
   returned. Every dimension of the client is a column dim_<name>: the order's for those on
   orders, customers and locations, the line's own or its product's for the others. */
SELECT
  CAST(l.source AS TEXT) AS source,
  CAST(l.order_id AS TEXT) AS order_id,
  CAST(o.order_date AS DATE) AS order_date,
  CAST(o.location_id AS TEXT) AS location_id,
  CAST(o.is_return AS BOOLEAN) AS is_return,
  CAST(l.product_id AS TEXT) AS product_id,
  CAST(l.quantity AS NUMERIC) AS quantity,
  CAST(l.line_total AS NUMERIC) AS line_total,
  CAST(l.currency AS TEXT) AS currency,
  @carried_dimensions(@client, ('orders', 'customers', 'locations'), o),
  @line_dimensions(@client, l),
  @carried_dimensions(@client, 'products', p)
FROM @{client}_staging.order_lines AS l
JOIN @{client}_staging.sales_receipts AS o
  ON o.source = l.source AND o.order_id = l.order_id
LEFT JOIN @dimension_source(@client, 'products') AS p
  ON p.product_id = l.product_id
