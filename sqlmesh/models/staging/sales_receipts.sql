MODEL (
  name @{client}_staging.sales_receipts,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain (source, order_id)
);

/* One row per sale or return receipt: staging.orders without its adjustments (stock
   write-offs, bad-debt entries: no goods sold for money), the orders every sales mart and
   kpi_daily count, so that a day's orders, revenue and items agree wherever they are shown. */
SELECT
  *
FROM @{client}_staging.orders
WHERE
  kind <> 'adjustment'
