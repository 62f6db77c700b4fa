MODEL (
  name @{client}_staging.inventory_levels,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  audits (
    not_null(columns := (source, counted_on, location_id, product_id, on_hand)),
    unique_combination_of_columns(columns := (source, counted_on, location_id, product_id))
  )
);

/* Canonical stock counts: every connector's staging of them, unioned (and audited here, so a
   failure blocks the inventory marts only). */
@canonical_union(@client, 'inventory_levels')
