MODEL (
  name @{client}_staging.stg_shopify__customers,
  kind FULL,
  blueprints @goalpost_blueprints('shopify'),
  grain (source, customer_id),
  audits (
    not_null_non_blocking(columns := (source, customer_id)),
    unique_combination_of_columns(columns := (source, customer_id))
  )
);

/* Shopify customers (GraphQL Customer, by last update): the gid is the id orders name. The
   email and phone are the customer's default ones (defaultEmailAddress, defaultPhoneNumber);
   empty names, emails and phones are NULL, as they are when the app lacks access to
   protected customer data (the run warns then); createdAt in the client's timezone. */
@canonical_select(
  'customers',
  (
    SELECT
        r.source AS source,
        r._key AS _key,
        r._loaded_at AS _loaded_at,
        r.data ->> 'id' AS customer_id,
        NULLIF(r.data ->> 'firstName', '') AS first_name,
        NULLIF(r.data ->> 'lastName', '') AS last_name,
        NULLIF(r.data #>> '{defaultEmailAddress,emailAddress}', '') AS email,
        NULLIF(r.data #>> '{defaultPhoneNumber,phoneNumber}', '') AS phone,
        @local_time(@client, r.data ->> 'createdAt') AS created_at
    FROM @raw_stream(@client, 'shopify', 'customers') AS r
    WHERE
      NOT r._deleted
  )
)
