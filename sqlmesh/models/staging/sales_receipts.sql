MODEL (
  name @{client}_staging.sales_receipts,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (source, order_id)
);

/* One row per sale or return receipt: staging.orders without its adjustments (stock
   write-offs, bad-debt entries: no goods sold for money), the orders every sales mart and
   kpi_daily count, so that a day's orders, revenue and items agree wherever they are shown.
   first_sale marks the person's first sale receipt, across sources (the new_customers
   metric: where and when a customer was won). */
SELECT
  o.*,
  COALESCE(
    o.kind = 'sale'
    AND o.customer_key IS NOT NULL
    AND ROW_NUMBER() OVER (
      PARTITION BY o.customer_key, o.kind = 'sale'
      ORDER BY o.ordered_at, o.source, o.order_id
    ) = 1,
    FALSE
  ) AS first_sale
FROM @{client}_staging.orders AS o
WHERE
  o.kind <> 'adjustment'
