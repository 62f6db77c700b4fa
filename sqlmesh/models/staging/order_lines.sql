MODEL (
  name @{client}_staging.order_lines,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  audits (
    not_null(
      columns := (source, _key, order_id, ordered_at, location_id, product_id, quantity, line_total)
    ),
    non_negative_quantities_except_returns,
    one_kind_per_order
  )
);

/* Canonical order_lines: every connector's staging of them, unioned. The blocking audits of
   sales lines are here, over every source's lines: a failure keeps everything built from the
   lines (orders, the sales marts) as it was until the data is fixed. */
@canonical_union(@client, 'order_lines')
