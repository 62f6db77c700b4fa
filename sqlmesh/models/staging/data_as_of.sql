MODEL (
  name @{client}_staging.data_as_of,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* The date the inventory marts are "as of", one row: the latest local date of a sale or a
   stock count of the client. It is never the clock, so a rebuild of the same data gives the
   same figures, and a client whose data stopped coming is seen as of its last data. */
SELECT
  CAST(
    GREATEST(
      (SELECT MAX(order_date) FROM @{client}_staging.orders),
      (SELECT MAX(counted_on) FROM @{client}_staging.inventory_levels)
    ) AS DATE
  ) AS as_of
