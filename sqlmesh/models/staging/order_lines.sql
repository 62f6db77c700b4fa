MODEL (
  name @{client}_staging.order_lines,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Canonical order_lines: every connector's staging of them, unioned. */
@canonical_union(@client, 'order_lines')
