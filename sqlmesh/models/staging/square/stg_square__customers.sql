MODEL (
  name @{client}_staging.stg_square__customers,
  kind FULL,
  blueprints @goalpost_blueprints('square'),
  grain (source, customer_id),
  audits (
    not_null_non_blocking(columns := (source, customer_id)),
    unique_combination_of_columns(columns := (source, customer_id))
  )
);

/* Square customer profiles (SearchCustomers); deleted profiles are left out. */
@canonical_select(
  'customers',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS customer_id,
        NULLIF(r.data ->> 'given_name', '') AS first_name,
        NULLIF(r.data ->> 'family_name', '') AS last_name,
        NULLIF(r.data ->> 'email_address', '') AS email,
        NULLIF(r.data ->> 'phone_number', '') AS phone,
        r.data #>> '{address,country}' AS country,
        @local_time(@client, r.data ->> 'created_at') AS created_at
    FROM @raw_stream(@client, 'square', 'customers') AS r
    WHERE
      NOT r._deleted
  )
)
