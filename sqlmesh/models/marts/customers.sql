MODEL (
  name @{client}_marts.customers,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain customer_key,
  audits (
    not_null_non_blocking(columns := (customer_key, sources)),
    unique_combination_of_columns_non_blocking(columns := (customer_key))
  )
);

/* One row per person across sources (see staging.customer_keys for the matching).
   Contact details are the most recently loaded non-empty ones (email lower-cased,
   staging.current_customers); customer is how a list names them: their name, else their
   email, else their id (as the source that first knew them writes it). first_seen_on is the earliest
   of the dates any source recorded the person (customer created_at) and their first sales
   receipt; acquisition_source is the source of that first sighting (a record's creation wins
   over a sale on the same day, then the source name decides). orders and revenue count sales
   receipts, revenue net of returns (staging.sales_receipts: adjustments are no purchase).
   The client's dimensions on customers are columns, as in current_customers. */
WITH records AS (
  SELECT
    k.customer_key,
    c.source,
    c.created_at
  FROM @{client}_staging.customers AS c
  JOIN @{client}_staging.customer_keys AS k
    ON k.source = c.source AND k.customer_id = c.customer_id
), purchases AS (
  SELECT
    customer_key,
    MIN(order_date) FILTER(WHERE NOT is_return) AS first_order_on,
    MAX(order_date) FILTER(WHERE NOT is_return) AS last_order_on,
    COUNT(*) FILTER(WHERE NOT is_return) AS orders,
    SUM(total) AS revenue
  FROM @{client}_staging.sales_receipts
  WHERE
    NOT customer_key IS NULL
  GROUP BY
    customer_key
), sightings AS (
  SELECT DISTINCT ON (customer_key)
    customer_key,
    seen_on,
    source
  FROM (
    SELECT
      customer_key,
      CAST(created_at AS DATE) AS seen_on,
      0 AS kind,
      source
    FROM records
    WHERE
      NOT created_at IS NULL
    UNION ALL
    SELECT
      customer_key,
      MIN(order_date),
      1,
      source
    FROM @{client}_staging.sales_receipts
    WHERE
      NOT customer_key IS NULL AND NOT is_return
    GROUP BY
      customer_key,
      source
  ) AS seen
  ORDER BY
    customer_key,
    seen_on,
    kind,
    source
), keys AS (
  SELECT
    customer_key,
    STRING_AGG(DISTINCT source, ', ' ORDER BY source) AS sources,
    COUNT(*) AS records
  FROM @{client}_staging.customer_keys
  GROUP BY
    customer_key
)
SELECT
  CAST(k.customer_key AS TEXT) AS customer_key,
  CAST(p.first_name AS TEXT) AS first_name,
  CAST(p.last_name AS TEXT) AS last_name,
  CAST(p.email AS TEXT) AS email,
  CAST(p.phone AS TEXT) AS phone,
  CAST(p.country AS TEXT) AS country,
  CAST(
    COALESCE(
      NULLIF(CONCAT_WS(' ', p.first_name, p.last_name), ''),
      p.email,
      SUBSTRING(k.customer_key FROM POSITION(':' IN k.customer_key) + 1)
    ) AS TEXT
  ) AS customer,
  CAST(s.seen_on AS DATE) AS first_seen_on,
  CAST(s.source AS TEXT) AS acquisition_source,
  CAST(k.sources AS TEXT) AS sources,
  CAST(k.records AS BIGINT) AS records,
  CAST(b.first_order_on AS DATE) AS first_order_on,
  CAST(b.last_order_on AS DATE) AS last_order_on,
  CAST(COALESCE(b.orders, 0) AS BIGINT) AS orders,
  CAST(COALESCE(b.revenue, 0) AS NUMERIC) AS revenue,
  @mart_dimensions(@client, 'customers', p)
FROM keys AS k
LEFT JOIN @{client}_staging.current_customers AS p
  ON p.customer_key = k.customer_key
LEFT JOIN sightings AS s
  ON s.customer_key = k.customer_key
LEFT JOIN purchases AS b
  ON b.customer_key = k.customer_key
