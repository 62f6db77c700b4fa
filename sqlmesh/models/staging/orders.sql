MODEL (
  name @{client}_staging.orders,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, order_id),
  audits (
    not_null_non_blocking(columns := (source, order_id, ordered_at, location_id)),
    unique_combination_of_columns_non_blocking(columns := (source, order_id))
  )
);

/* One row per order (receipt), derived from its lines; a return is an order whose total is
   negative. */
SELECT
  CAST(source AS TEXT) AS source,
  CAST(order_id AS TEXT) AS order_id,
  CAST(MIN(ordered_at) AS TIMESTAMP) AS ordered_at,
  CAST(MIN(ordered_at) AS DATE) AS order_date,
  CAST(MIN(location_id) AS TEXT) AS location_id,
  CAST(MIN(channel) AS TEXT) AS channel,
  CAST(MAX(customer_id) AS TEXT) AS customer_id,
  CAST(SUM(quantity) AS NUMERIC) AS items,
  CAST(COUNT(*) AS BIGINT) AS lines,
  CAST(SUM(line_total) AS NUMERIC) AS total,
  COALESCE(SUM(line_total), 0) < 0 AS is_return,
  CAST(MAX(returned_order_id) AS TEXT) AS returned_order_id,
  CAST(MIN(currency) AS TEXT) AS currency
FROM @{client}_staging.order_lines
GROUP BY
  source,
  order_id
