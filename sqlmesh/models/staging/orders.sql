MODEL (
  name @{client}_staging.orders,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, order_id),
  audits (
    not_null(columns := (source, order_id, ordered_at, location_id, kind)),
    unique_combination_of_columns(columns := (source, order_id)),
    accepted_values(column := kind, is_in := ('sale', 'return', 'adjustment')),
    orders_match_their_lines(lines := @{client}_staging.order_lines)
  )
);

/* One row per order (receipt), derived from its lines, classified as a sale, a return or an
   adjustment (kind). The source's order_kind when its lines give one (the vendor's staging
   says what a sale and a return are); else by what changed hands: money in (a positive total)
   is a sale, and so are priced goods given away (a zero total whose goods had a price: a
   loyalty reward, a comped item); money out with goods back (a negative total and a negative
   quantity) is a return; anything else an adjustment: no money for goods at price 0 (a stock
   write-off, a zero-value correction) or money without goods (a bad-debt entry). Only sales and returns are counted
   by the sales marts (staging.sales_receipts). customer_key is the person behind customer_id
   across sources (customer_keys). The order's dimension columns (the client's `dimensions:`
   on orders, customers and locations) follow its lines' ids. */
WITH orders AS (
  SELECT
    source,
    order_id,
    MIN(ordered_at) AS ordered_at,
    MIN(location_id) AS location_id,
    MIN(channel) AS channel,
    MAX(customer_id) AS customer_id,
    SUM(quantity) AS items,
    COUNT(*) AS lines,
    SUM(line_total) AS total,
    BOOL_OR(quantity < 0) AS goods_back,
    SUM(quantity * unit_price) AS list_value,
    MIN(LOWER(TRIM(order_kind))) AS given_kind,
    MAX(returned_order_id) AS returned_order_id,
    MIN(currency) AS currency,
    @latest_dimensions(@client, 'orders', 'line_number, _key')
  FROM @{client}_staging.order_lines
  GROUP BY
    source,
    order_id
), classified AS (
  SELECT
    o.*,
    COALESCE(
      o.given_kind,
      CASE
        WHEN o.total > 0
        THEN 'sale'
        WHEN o.total = 0 AND o.list_value > 0
        THEN 'sale'
        WHEN o.total < 0 AND o.goods_back
        THEN 'return'
        ELSE 'adjustment'
      END
    ) AS kind
  FROM orders AS o
)
SELECT
  CAST(o.source AS TEXT) AS source,
  CAST(o.order_id AS TEXT) AS order_id,
  CAST(o.ordered_at AS TIMESTAMP) AS ordered_at,
  CAST(o.ordered_at AS DATE) AS order_date,
  CAST(o.location_id AS TEXT) AS location_id,
  CAST(o.channel AS TEXT) AS channel,
  CAST(o.customer_id AS TEXT) AS customer_id,
  CAST(k.customer_key AS TEXT) AS customer_key,
  CAST(o.items AS NUMERIC) AS items,
  CAST(o.lines AS BIGINT) AS lines,
  CAST(o.total AS NUMERIC) AS total,
  CAST(o.kind AS TEXT) AS kind,
  o.kind = 'return' AS is_return,
  CAST(o.returned_order_id AS TEXT) AS returned_order_id,
  CAST(o.currency AS TEXT) AS currency,
  @carried_dimensions(@client, 'orders', o),
  @carried_dimensions(@client, 'customers', c),
  @carried_dimensions(@client, 'locations', n)
FROM classified AS o
LEFT JOIN @{client}_staging.customer_keys AS k
  ON k.source = o.source AND k.customer_id = o.customer_id
LEFT JOIN @dimension_source(@client, 'customers') AS c
  ON c.customer_key = k.customer_key
LEFT JOIN @dimension_source(@client, 'locations') AS n
  ON n.location_id = o.location_id
