MODEL (
  name @{client}_staging.stg_lightspeed_x__customers,
  kind FULL,
  blueprints @goalpost_blueprints('lightspeed_x'),
  grain (source, customer_id),
  audits (
    not_null_non_blocking(columns := (source, customer_id)),
    unique_combination_of_columns(columns := (source, customer_id))
  )
);

/* Lightspeed X-Series customers: the id is the one sales name (customer_code is the
   retailer's own code). Deleted customers are left out; empty fields are NULL. */
@canonical_select(
  'customers',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS customer_id,
        NULLIF(r.data ->> 'first_name', '') AS first_name,
        NULLIF(r.data ->> 'last_name', '') AS last_name,
        NULLIF(r.data ->> 'email', '') AS email,
        NULLIF(r.data ->> 'phone', '') AS phone,
        @local_time(@client, r.data ->> 'created_at') AS created_at
    FROM @raw_stream(@client, 'lightspeed_x', 'customers') AS r
    WHERE
      NOT r._deleted
  )
)
