MODEL (
  name @{client}_staging.current_customers,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain customer_key
);

/* One row per person the customer records know (customer_keys: one person across sources),
   as the marts describe them: each contact detail the most recently loaded non-empty one of
   their records (email normalised as in customer_keys), and each of the client's dimensions
   on customers (dim_<name>) likewise. */
WITH records AS (
  SELECT
    k.customer_key,
    c.*,
    k.email AS normalised_email
  FROM @{client}_staging.customers AS c
  JOIN @{client}_staging.customer_keys AS k
    ON k.source = c.source AND k.customer_id = c.customer_id
)
SELECT
  CAST(customer_key AS TEXT) AS customer_key,
  CAST((ARRAY_AGG(first_name ORDER BY _loaded_at DESC) FILTER(WHERE first_name <> ''))[1] AS TEXT)
    AS first_name,
  CAST((ARRAY_AGG(last_name ORDER BY _loaded_at DESC) FILTER(WHERE last_name <> ''))[1] AS TEXT)
    AS last_name,
  CAST(
    (ARRAY_AGG(normalised_email ORDER BY _loaded_at DESC)
      FILTER(WHERE NOT normalised_email IS NULL))[1] AS TEXT
  ) AS email,
  CAST((ARRAY_AGG(phone ORDER BY _loaded_at DESC) FILTER(WHERE phone <> ''))[1] AS TEXT) AS phone,
  CAST((ARRAY_AGG(country ORDER BY _loaded_at DESC) FILTER(WHERE country <> ''))[1] AS TEXT)
    AS country,
  @latest_dimensions(@client, 'customers', '_loaded_at DESC, source')
FROM records
GROUP BY
  customer_key
