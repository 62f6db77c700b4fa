MODEL (
  name @{client}_staging.stg_lightspeed_x__order_lines,
  kind FULL,
  blueprints @goalpost_blueprints('lightspeed_x'),
  grain (source, order_id, line_number),
  audits (
    not_null(
      columns := (source, _key, order_id, ordered_at, location_id, product_id, quantity, line_total)
    ),
    unique_combination_of_columns(columns := (source, order_id, line_number))
  )
);

/* Lightspeed X-Series sales as lines. How X-Series reports what did not sell:
   - only closed sales are sales (state closed, or a legacy status ending in CLOSED): voided
     ones, parked (SAVED) ones and pending ones not yet paid (on account, layby, awaiting
     dispatch or pickup) are left out, and so are deleted ones;
   - a return is a closed sale with negative quantities and totals; return_for names the sale
     its goods came from, which becomes returned_order_id.
   Amounts are JSON decimals in the outlet's currency. X-Series gives line prices without tax
   with the tax beside them: line_total is price_total + tax_total, what the customer paid
   after discounts, tax included (the PanPan golden figures). The line's discount is given per
   unit without tax; tax is put back on it with the line's ratio of paid to paid without tax
   (the product's ratio of its prices with and without tax on a line given away, which has no
   tax), rounded to cents; unit_price is the tax-included price before discount. Products are named by SKU through
   the product feed. The sale time is sale_date in the client's timezone. The channel is how
   the sale was fulfilled: 'delivery' or 'pickup' (the sale's attribute, or its legacy status),
   else 'in_store'; a return takes the channel of the sale it returns. order_kind: a closed
   sale is a sale (one given away at zero too), a return when its lines add up below zero. */
@canonical_select(
  'order_lines',
  (
    WITH channels AS (
      SELECT
        r.source,
        r.data ->> 'id' AS id,
        CASE
          WHEN COALESCE(r.data -> 'attributes', '[]') @> CAST('["delivery"]' AS JSONB)
          OR r.data ->> 'status' IN ('AWAITING_DISPATCH', 'DISPATCHED_CLOSED')
          THEN 'delivery'
          WHEN COALESCE(r.data -> 'attributes', '[]') @> CAST('["pickup"]' AS JSONB)
          OR r.data ->> 'status' IN ('AWAITING_PICKUP', 'PICKED_UP_CLOSED')
          THEN 'pickup'
          ELSE 'in_store'
        END AS channel
      FROM @raw_lookup(@client, 'lightspeed_x', 'sales') AS r
    ), closed AS (
      SELECT
        r.source,
        r._key,
        r._loaded_at,
        r.data
      FROM @raw_stream(@client, 'lightspeed_x', 'sales') AS r
      WHERE
        NOT r._deleted
        AND COALESCE(
          LOWER(r.data ->> 'state'),
          CASE WHEN r.data ->> 'status' LIKE '%CLOSED' THEN 'closed' END
        ) = 'closed'
    ), products AS (
      SELECT
        p.source,
        p.data ->> 'id' AS id,
        COALESCE(NULLIF(p.data ->> 'sku', ''), p.data ->> 'id') AS product_id,
        p.data ->> 'name' AS name,
        CAST(p.data ->> 'price_including_tax' AS NUMERIC)
        / NULLIF(CAST(p.data ->> 'price_excluding_tax' AS NUMERIC), 0) AS tax_ratio
      FROM @raw_lookup(@client, 'lightspeed_x', 'products') AS p
    ), outlets AS (
      SELECT
        o.source,
        o.data ->> 'id' AS id,
        o.data ->> 'currency' AS currency
      FROM @raw_lookup(@client, 'lightspeed_x', 'outlets') AS o
    ), lines AS (
      SELECT
        s.source,
        s._key,
        s._loaded_at,
        s.data,
        COALESCE(original.channel, own.channel) AS channel,
        li.value AS line,
        p.product_id,
        p.name AS product_name,
        p.tax_ratio,
        li.ordinality AS position,
        CAST(li.value ->> 'quantity' AS NUMERIC) AS quantity,
        COALESCE(
          CAST(li.value ->> 'price_total' AS NUMERIC) + CAST(li.value ->> 'tax_total' AS NUMERIC),
          CAST(li.value ->> 'quantity' AS NUMERIC) * (
            CAST(li.value ->> 'price' AS NUMERIC) + CAST(li.value ->> 'tax' AS NUMERIC)
          )
        ) AS paid,
        COALESCE(
          CAST(li.value ->> 'price_total' AS NUMERIC),
          CAST(li.value ->> 'quantity' AS NUMERIC) * CAST(li.value ->> 'price' AS NUMERIC)
        ) AS paid_without_tax
      FROM closed AS s
      LEFT JOIN channels AS own
        ON own.source = s.source AND own.id = s.data ->> 'id'
      LEFT JOIN channels AS original
        ON original.source = s.source AND original.id = s.data ->> 'return_for'
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(s.data -> 'line_items', '[]')) WITH ORDINALITY AS li
      LEFT JOIN products AS p
        ON p.source = s.source AND p.id = li.value ->> 'product_id'
    ), priced AS (
      SELECT
        l.source,
        l._key,
        l._loaded_at,
        l.data,
        l.channel,
        l.line,
        l.product_id,
        l.product_name,
        l.position,
        l.quantity,
        l.paid,
        ROUND(
          l.quantity * COALESCE(CAST(l.line ->> 'discount' AS NUMERIC), 0)
          * COALESCE(l.paid / NULLIF(l.paid_without_tax, 0), l.tax_ratio, 1),
          2
        ) AS discount
      FROM lines AS l
    )
    SELECT
        l.source AS source,
        l._key AS _key,
        l._loaded_at AS _loaded_at,
        l.data ->> 'id' AS order_id,
        ROW_NUMBER() OVER (
          PARTITION BY l.source, l.data ->> 'id'
          ORDER BY CAST(l.line ->> 'sequence' AS NUMERIC), l.position
        ) AS line_number,
        @local_time(@client, l.data ->> 'sale_date') AS ordered_at,
        l.data ->> 'outlet_id' AS location_id,
        l.channel AS channel,
        l.data ->> 'customer_id' AS customer_id,
        COALESCE(l.product_id, l.line ->> 'product_id') AS product_id,
        l.product_name AS product_name,
        l.quantity AS quantity,
        ROUND((l.paid + l.discount) / NULLIF(l.quantity, 0), 2) AS unit_price,
        l.discount AS discount,
        l.paid AS line_total,
        l.data ->> 'return_for' AS returned_order_id,
        CASE
          WHEN SUM(l.paid) OVER (PARTITION BY l.source, l.data ->> 'id') < 0
          THEN 'return'
          ELSE 'sale'
        END AS order_kind,
        o.currency AS currency
    FROM priced AS l
    LEFT JOIN outlets AS o
      ON o.source = l.source AND o.id = l.data ->> 'outlet_id'
  )
)
