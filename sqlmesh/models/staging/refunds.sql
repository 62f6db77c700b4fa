MODEL (
  name @{client}_staging.refunds,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (source, order_id)
);

/* Canonical refunds: money and goods given back, one row per return, with positive amounts.
   Every source reports a return as an order (or order part) with negative lines; staging turns
   each vendor's form into that (Square return orders, Shopify refunds, Lightspeed negative
   sale lines, RET- receipts in files), so refunds are those orders. Cancelled orders never
   reach staging: nothing was sold, nothing is refunded. */
SELECT
  CAST(source AS TEXT) AS source,
  CAST(order_id AS TEXT) AS order_id,
  CAST(returned_order_id AS TEXT) AS returned_order_id,
  CAST(ordered_at AS TIMESTAMP) AS refunded_at,
  CAST(order_date AS DATE) AS refund_date,
  CAST(location_id AS TEXT) AS location_id,
  CAST(channel AS TEXT) AS channel,
  CAST(customer_id AS TEXT) AS customer_id,
  CAST(-items AS NUMERIC) AS items,
  CAST(-total AS NUMERIC) AS amount,
  CAST(currency AS TEXT) AS currency
FROM @{client}_staging.orders
WHERE
  is_return
