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

/* Zoho Inventory warehouses (settings/warehouses), named by Zoho's warehouse id: stock levels
   refer to them so. These ids are Zoho's own, not the POS's location ids; only the names may
   match the shops'. Inactive warehouses are kept, as stock may still refer to them. Zoho gives
   no opening date. */
@canonical_select(
  'locations',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'warehouse_id' AS location_id,
        r.data ->> 'warehouse_name' AS name,
        NULLIF(BTRIM(r.data ->> 'city'), '') AS city
    FROM @raw_stream(@client, 'zoho_inventory', 'warehouses') AS r
    WHERE
      NOT r._deleted
  )
)
