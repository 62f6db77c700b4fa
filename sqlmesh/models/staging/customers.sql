MODEL (
  name @{client}_staging.customers,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Canonical customers: every connector's staging of them, unioned. */
@canonical_union(@client, 'customers')
