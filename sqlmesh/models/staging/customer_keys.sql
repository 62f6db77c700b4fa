MODEL (
  name @{client}_staging.customer_keys,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (source, customer_id),
  audits (
    not_null(columns := (source, customer_id, customer_key)),
    unique_combination_of_columns(columns := (source, customer_id))
  )
);

/* One person, one customer_key, across every source that knows them (POS, web shop, CRM).

   Every customer record, and every customer id an order names, is a node "<source>:<id>".
   Two nodes are the same person when they share a normalised email (trimmed, lower-cased) or
   phone (its E.164 form, see phone_numbers.py), directly or through a chain of such
   links: the key is the smallest node of the connected component. An email or phone held by
   more than 20 records does not identify anyone (a shop's own number typed in for walk-ins, a
   placeholder address) and links nothing. A node the customers entity does not hold (an id
   only seen on orders) is a person of its own. */
WITH RECURSIVE records AS (
  SELECT
    source,
    customer_id,
    CASE WHEN POSITION('@' IN email) > 1 THEN LOWER(TRIM(email)) END AS email,
    p.e164 AS phone
  FROM @{client}_staging.customers AS c
  LEFT JOIN @{client}_staging.phone_numbers AS p
    ON p.written = TRIM(c.phone)
  WHERE
    customer_id IS NOT NULL
), nodes AS (
  SELECT
    source,
    customer_id,
    source || ':' || customer_id AS node,
    MIN(email) AS email,
    MIN(phone) AS phone
  FROM (
    SELECT
      source,
      customer_id,
      email,
      phone
    FROM records
    UNION ALL
    SELECT DISTINCT
      source,
      customer_id,
      CAST(NULL AS TEXT),
      CAST(NULL AS TEXT)
    FROM @{client}_staging.order_lines
    WHERE
      customer_id IS NOT NULL
  ) AS seen
  GROUP BY
    source,
    customer_id
), identifiers AS (
  SELECT
    node,
    ident
  FROM (
    SELECT
      node,
      'email:' || email AS ident
    FROM nodes
    WHERE
      NOT email IS NULL
    UNION ALL
    SELECT
      node,
      'phone:' || phone
    FROM nodes
    WHERE
      NOT phone IS NULL
  ) AS held
), identifying AS (
  SELECT
    ident,
    MIN(node) AS anchor
  FROM identifiers
  GROUP BY
    ident
  HAVING
    COUNT(*) BETWEEN 2 AND 20
), edges AS (
  SELECT
    i.node AS a,
    d.anchor AS b
  FROM identifiers AS i
  JOIN identifying AS d
    ON d.ident = i.ident
  WHERE
    i.node <> d.anchor
  UNION
  SELECT
    d.anchor,
    i.node
  FROM identifiers AS i
  JOIN identifying AS d
    ON d.ident = i.ident
  WHERE
    i.node <> d.anchor
), reach(node, member) AS (
  SELECT
    node,
    node
  FROM nodes
  UNION
  SELECT
    r.node,
    e.b
  FROM reach AS r
  JOIN edges AS e
    ON e.a = r.member
)
SELECT
  CAST(n.source AS TEXT) AS source,
  CAST(n.customer_id AS TEXT) AS customer_id,
  CAST(k.customer_key AS TEXT) AS customer_key,
  CAST(n.email AS TEXT) AS email,
  CAST(n.phone AS TEXT) AS phone
FROM nodes AS n
JOIN (
  SELECT
    node,
    MIN(member) AS customer_key
  FROM reach
  GROUP BY
    node
) AS k
  ON k.node = n.node
