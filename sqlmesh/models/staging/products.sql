MODEL (
  name @{client}_staging.products,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Canonical products: every connector's staging of them, unioned. */
@canonical_union(@client, 'products')
