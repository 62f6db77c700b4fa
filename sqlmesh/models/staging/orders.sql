MODEL (
  name @{client}_staging.orders,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, order_id),
  audits (
    not_null(columns := (source, order_id, ordered_at, location_id)),
    unique_combination_of_columns(columns := (source, order_id)),
    orders_match_their_lines(lines := @{client}_staging.order_lines)
  )
);

/* One row per order (receipt), derived from its lines; a return is an order whose total is
   negative. customer_key is the person behind customer_id across sources (customer_keys). */
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
    MAX(returned_order_id) AS returned_order_id,
    MIN(currency) AS currency
  FROM @{client}_staging.order_lines
  GROUP BY
    source,
    order_id
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
  COALESCE(o.total, 0) < 0 AS is_return,
  CAST(o.returned_order_id AS TEXT) AS returned_order_id,
  CAST(o.currency AS TEXT) AS currency
FROM orders AS o
LEFT JOIN @{client}_staging.customer_keys AS k
  ON k.source = o.source AND k.customer_id = o.customer_id
