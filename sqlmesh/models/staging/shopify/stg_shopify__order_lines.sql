MODEL (
  name @{client}_staging.stg_shopify__order_lines,
  kind FULL,
  blueprints @goalpost_blueprints('shopify'),
  grain (source, order_id, line_number),
  audits (
    not_null(
      columns := (source, _key, order_id, ordered_at, location_id, product_id, quantity, line_total)
    ),
    unique_combination_of_columns(columns := (source, order_id, line_number))
  )
);

/* Shopify orders as lines. How Shopify reports what did not sell:
   - a cancelled order (cancelledAt set) is no sale: left out whole, with any refund it carries
     (cancelling a paid order refunds it); test orders are left out too;
   - a refund lives inside its order (refunds[], with its createdAt and refundLineItems): each
     refund becomes an order of its own (the refund's id) dated when it was made, whose goods
     are lines with negative quantity and amount, returned_order_id naming the order, at the
     location the refund line says (where the goods came back) else the order's. Refunds of
     money only (no refund line items: shipping, goodwill) carry no goods and are not staged.
   What was sold is what remains after order edits: a line's quantity counts the units an
   edit removed and the units refunded, its currentQuantity neither, so the units sold are
   currentQuantity plus the units its refunds took back (those come back as refund lines).
   Money is shopMoney (the shop's currency), decimal strings. line_total is what the customer
   paid for the units sold: the line's originalTotalSet less every discount allocated to it
   (discountAllocations: line discounts, codes, and order-level discounts spread across the
   lines, which discountedTotalSet leaves out), in proportion to the units sold when an edit
   removed some (to the cent); a refunded line's is its subtotalSet. Tax is included as the
   shop's prices are. unit_price is the original unit price, discount the difference. The sale
   time is processedAt (createdAt if missing) in the client's timezone; the location is the
   order's retailLocation; the channel is Shopify's sourceName (pos, web, ...).
   order_kind: a refund is a return, an order a sale (one discounted to zero too). */
@canonical_select(
  'order_lines',
  (
    WITH orders AS (
      SELECT
        r.source,
        r._key,
        r._loaded_at,
        r.data,
        r.data #>> '{retailLocation,id}' AS location_id
      FROM @raw_stream(@client, 'shopify', 'orders') AS r
      WHERE
        NOT r._deleted
        AND r.data ->> 'cancelledAt' IS NULL
        AND NOT COALESCE(CAST(r.data ->> 'test' AS BOOLEAN), FALSE)
    ), lines AS (
      SELECT
        o.source,
        o._key,
        o._loaded_at,
        o.data,
        o.data ->> 'id' AS order_id,
        COALESCE(o.data ->> 'processedAt', o.data ->> 'createdAt') AS sold_at,
        o.location_id,
        li.value AS item,
        s.units AS quantity,
        CASE
          WHEN s.units = s.ordered
          THEN s.after_discounts
          WHEN s.ordered = 0
          THEN 0
          ELSE ROUND(s.after_discounts * s.units / s.ordered, 2)
        END AS paid,
        li.value #>> '{originalTotalSet,shopMoney,currencyCode}' AS currency,
        CAST(NULL AS TEXT) AS returned_order_id,
        0 AS part,
        li.ordinality AS position
      FROM orders AS o
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(o.data #> '{lineItems,nodes}', '[]')) WITH ORDINALITY AS li
      /* Units sold (current, plus what refunds took back) and the total after discounts. */
      CROSS JOIN LATERAL (
        SELECT
          CAST(li.value ->> 'quantity' AS NUMERIC) AS ordered,
          CAST(li.value ->> 'currentQuantity' AS NUMERIC) + COALESCE(
            (
              SELECT
                SUM(CAST(rli.value ->> 'quantity' AS NUMERIC))
              FROM JSONB_ARRAY_ELEMENTS(COALESCE(o.data -> 'refunds', '[]')) AS ref
              CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(ref.value #> '{refundLineItems,nodes}', '[]')) AS rli
              WHERE
                rli.value #>> '{lineItem,id}' = li.value ->> 'id'
            ),
            0
          ) AS units,
          CAST(li.value #>> '{originalTotalSet,shopMoney,amount}' AS NUMERIC) - COALESCE(
            (
              SELECT
                SUM(CAST(a.value #>> '{allocatedAmountSet,shopMoney,amount}' AS NUMERIC))
              FROM JSONB_ARRAY_ELEMENTS(COALESCE(li.value -> 'discountAllocations', '[]')) AS a
            ),
            0
          ) AS after_discounts
      ) AS s
      UNION ALL
      SELECT
        o.source,
        o._key,
        o._loaded_at,
        o.data,
        ref.value ->> 'id',
        ref.value ->> 'createdAt',
        COALESCE(rli.value #>> '{location,id}', o.location_id),
        COALESCE(sold.value, rli.value -> 'lineItem'),
        -CAST(rli.value ->> 'quantity' AS NUMERIC),
        -CAST(rli.value #>> '{subtotalSet,shopMoney,amount}' AS NUMERIC),
        rli.value #>> '{subtotalSet,shopMoney,currencyCode}',
        o.data ->> 'id',
        ref.ordinality,
        rli.ordinality
      FROM orders AS o
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(o.data -> 'refunds', '[]')) WITH ORDINALITY AS ref
      CROSS JOIN LATERAL JSONB_ARRAY_ELEMENTS(COALESCE(ref.value #> '{refundLineItems,nodes}', '[]')) WITH ORDINALITY AS rli
      /* The order's own line: its original unit price. */
      LEFT JOIN LATERAL (
        SELECT
          l.value
        FROM JSONB_ARRAY_ELEMENTS(COALESCE(o.data #> '{lineItems,nodes}', '[]')) AS l
        WHERE
          l.value ->> 'id' = rli.value #>> '{lineItem,id}'
        LIMIT 1
      ) AS sold
        ON TRUE
    )
    SELECT
        l.source AS source,
        l._key AS _key,
        l._loaded_at AS _loaded_at,
        l.order_id AS order_id,
        ROW_NUMBER() OVER (PARTITION BY l.source, l.order_id ORDER BY l.part, l.position) AS line_number,
        @local_time(@client, l.sold_at) AS ordered_at,
        l.location_id AS location_id,
        l.data ->> 'sourceName' AS channel,
        l.data #>> '{customer,id}' AS customer_id,
        COALESCE(NULLIF(l.item ->> 'sku', ''), l.item ->> 'name') AS product_id,
        l.item ->> 'name' AS product_name,
        l.quantity AS quantity,
        CAST(l.item #>> '{originalUnitPriceSet,shopMoney,amount}' AS NUMERIC) AS unit_price,
        l.quantity * CAST(l.item #>> '{originalUnitPriceSet,shopMoney,amount}' AS NUMERIC) - l.paid AS discount,
        l.paid AS line_total,
        l.returned_order_id AS returned_order_id,
        CASE
          WHEN SUM(l.paid) OVER (PARTITION BY l.source, l.order_id) < 0 THEN 'return' ELSE 'sale'
        END AS order_kind,
        COALESCE(l.currency, l.data #>> '{totalPriceSet,shopMoney,currencyCode}') AS currency
    FROM lines AS l
  )
)
