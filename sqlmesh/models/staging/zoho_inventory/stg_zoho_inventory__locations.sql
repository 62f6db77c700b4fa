MODEL (
  name @{client}_staging.stg_zoho_inventory__locations,
  kind FULL,
  blueprints @goalpost_blueprints('zoho_inventory'),
  grain (source, location_id),
  audits (
    not_null_non_blocking(columns := (source, location_id, name)),
    unique_combination_of_columns(columns := (source, location_id))
  )
);

/* Zoho Inventory locations (GET /locations, the current API) and, for an organisation not yet
   on Locations, warehouses (settings/warehouses), named by Zoho's own id: stock levels refer
   to them so. These ids are Zoho's, not the POS's location ids; only the names may match the
   shops'. Inactive ones are kept, as stock may still refer to them. Zoho gives no opening
   date. */
@canonical_select(
  'locations',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'location_id' AS location_id,
        r.data ->> 'location_name' AS name,
        NULLIF(BTRIM(r.data #>> '{address,city}'), '') AS city
    FROM @raw_stream(@client, 'zoho_inventory', 'locations') AS r
    WHERE
      NOT r._deleted
    UNION ALL
    SELECT
        r.source,
        r._key,
        r._loaded_at,
        r.data ->> 'warehouse_id',
        r.data ->> 'warehouse_name',
        NULLIF(BTRIM(r.data ->> 'city'), '')
    FROM @raw_stream(@client, 'zoho_inventory', 'warehouses') AS r
    WHERE
      NOT r._deleted
  )
)
