MODEL (
  name @{client}_staging.inventory_levels,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Canonical stock counts: every connector's staging of them, unioned. */
@canonical_union(@client, 'inventory_levels')
