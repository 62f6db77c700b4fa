MODEL (
  name @{client}_staging.stg_square__order_lines,
  kind FULL,
  blueprints @goalpost_blueprints('square'),
  grain (source, order_id, line_number),
  audits (
    not_null(
      columns := (source, _key, order_id, ordered_at, location_id, product_id, quantity, line_total)
    ),
    unique_combination_of_columns(columns := (source, order_id, line_number))
  )
);

/* Square orders as lines. How Square reports what did not sell:
   - a CANCELED order (and an OPEN or DRAFT one, not yet paid) is no sale: left out;
   - a return or refund of goods is its own order whose returns[].return_line_items name the
     order they came from: each becomes a line with negative quantity and amount, and
     returned_order_id is that order.
   Amounts are Square's integer minor units as decimals; line_total is the line's total_money
   (after discounts, tax included). The sale time is closed_at (created_at if missing) in the
   client's timezone; the channel is the order's source name. order_kind: a COMPLETED order
   is a sale (one comped to zero too), a return when its lines add up below zero. */
@canonical_select(
  'order_lines',
  (
    WITH orders AS (
      SELECT
        r.source,
        r._key,
        r._loaded_at,
        r.data
      FROM @raw_stream(@client, 'square', 'orders') AS r
      WHERE
        NOT r._deleted AND r.data ->> 'state' = 'COMPLETED'
    ), variations AS (
      SELECT
        v.source,
        v.variation_id,
        v.product_id
      FROM @{client}_staging.stg_square__catalog_variations AS v
    ), lines AS (
      SELECT
        o.source,
        o._key,
        o._loaded_at,
        o.data,
        li.value AS line,
        1 AS sign,
        CAST(NULL AS TEXT) AS returned_order_id,
        0 AS part,
        li.ordinality AS position
      FROM orders AS o
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(o.data -> 'line_items', '[]')) WITH ORDINALITY AS li
      UNION ALL
      SELECT
        o.source,
        o._key,
        o._loaded_at,
        o.data,
        rli.value,
        -1,
        ret.value ->> 'source_order_id',
        ret.ordinality,
        rli.ordinality
      FROM orders AS o
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(o.data -> 'returns', '[]')) WITH ORDINALITY AS ret
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(ret.value -> 'return_line_items', '[]')) WITH ORDINALITY AS rli
    )
    SELECT
        l.source AS source,
        l._key AS _key,
        l._loaded_at AS _loaded_at,
        l.data ->> 'id' AS order_id,
        ROW_NUMBER() OVER (
          PARTITION BY l.source, l.data ->> 'id' ORDER BY l.part, l.position
        ) AS line_number,
        @local_time(@client, COALESCE(l.data ->> 'closed_at', l.data ->> 'created_at')) AS ordered_at,
        l.data ->> 'location_id' AS location_id,
        l.data #>> '{source,name}' AS channel,
        l.data ->> 'customer_id' AS customer_id,
        COALESCE(
          v.product_id,
          l.line ->> 'catalog_object_id',
          l.line ->> 'name'
        ) AS product_id,
        l.line ->> 'name' AS product_name,
        l.sign * CAST(l.line ->> 'quantity' AS NUMERIC) AS quantity,
        @minor_units(l.line -> 'base_price_money') AS unit_price,
        l.sign * @minor_units(l.line -> 'total_discount_money') AS discount,
        l.sign * @minor_units(l.line -> 'total_money') AS line_total,
        l.returned_order_id AS returned_order_id,
        CASE
          WHEN SUM(l.sign * @minor_units(l.line -> 'total_money')) OVER (
            PARTITION BY l.source, l.data ->> 'id'
          ) < 0
          THEN 'return'
          ELSE 'sale'
        END AS order_kind,
        l.line #>> '{total_money,currency}' AS currency
    FROM lines AS l
    LEFT JOIN variations AS v
      ON v.source = l.source AND v.variation_id = l.line ->> 'catalog_object_id'
  )
)
