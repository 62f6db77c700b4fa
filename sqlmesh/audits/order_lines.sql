/* Audits of order lines (blocking: a failure stops what is built from the lines, the sales
   marts, until the data is fixed; everything else is still built). */

AUDIT (
  name non_negative_quantities_except_returns,
  blocking TRUE
);
/* A negative quantity is goods coming back: a return or refund gives money back (a negative
   amount), an exchange nets it against a sale on the same receipt, a write-off has no amount.
   A negative quantity that brought money in is a sign error in the source, which would
   quietly distort units and revenue. */
SELECT
  source,
  order_id,
  line_number,
  quantity,
  line_total
FROM @this_model
WHERE
  quantity < 0 AND line_total > 0;

AUDIT (
  name orders_match_their_lines,
  blocking TRUE
);
/* Integrity of orders (this model) with their lines (the `lines` argument): every order line belongs to exactly one order whose
   items and total are the sum of its lines, and every order has lines. */
WITH lines AS (
  SELECT
    source,
    order_id,
    SUM(quantity) AS items,
    SUM(line_total) AS total
  FROM @lines
  GROUP BY
    source,
    order_id
)
SELECT
  COALESCE(o.source, l.source) AS source,
  COALESCE(o.order_id, l.order_id) AS order_id,
  o.items AS order_items,
  l.items AS line_items,
  o.total AS order_total,
  l.total AS line_total
FROM @this_model AS o
FULL JOIN lines AS l
  ON l.source = o.source AND l.order_id = o.order_id
WHERE
  o.order_id IS NULL
  OR l.order_id IS NULL
  OR o.items IS DISTINCT FROM l.items
  OR o.total IS DISTINCT FROM l.total;

AUDIT (
  name one_kind_per_order,
  blocking TRUE
);
/* An order is one thing: a sale, a return or an adjustment. When a source gives order_kind,
   every line of the order gives the same one (a mapped column that says "sale" on one line
   and nothing or "refund" on another cannot be classified without guessing). */
SELECT
  source,
  order_id,
  STRING_AGG(DISTINCT COALESCE(LOWER(TRIM(order_kind)), '(empty)'), ', ') AS kinds
FROM @this_model
GROUP BY
  source,
  order_id
HAVING
  COUNT(order_kind) > 0
  AND (COUNT(DISTINCT LOWER(TRIM(order_kind))) > 1 OR COUNT(order_kind) < COUNT(*));
