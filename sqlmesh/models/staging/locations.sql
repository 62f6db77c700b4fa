MODEL (
  name @{client}_staging.locations,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* Canonical locations: every connector's staging of them, unioned. */
@canonical_union(@client, 'locations')
