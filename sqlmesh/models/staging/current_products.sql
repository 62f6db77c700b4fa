MODEL (
  name @{client}_staging.current_products,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain product_id
);

/* One row per product the client's data knows, from its product lists or its sales lines, as
   the marts describe it. Each attribute is the latest value the canonical products give for
   it (latest loaded first, then the first source by name), each taken on its own among the
   rows where it is not NULL, so a source that leaves a field empty does not hide another's
   value. A product no list knows, or knows without a name, is named as on its latest sales
   line (latest ordered_at, then the highest order_id). unit_price and unit_cost each come with
   the currency of the row they were taken from (price_currency, cost_currency). The client's
   dimensions on products (dim_<name>) are taken like the other attributes. */
WITH listed AS (
  SELECT
    product_id,
    (ARRAY_AGG(name ORDER BY _loaded_at DESC, source) FILTER(WHERE name IS NOT NULL))[1] AS name,
    (ARRAY_AGG(category ORDER BY _loaded_at DESC, source) FILTER(WHERE category IS NOT NULL))[1]
      AS category,
    (ARRAY_AGG(unit_price ORDER BY _loaded_at DESC, source)
      FILTER(WHERE unit_price IS NOT NULL))[1] AS unit_price,
    (ARRAY_AGG(currency ORDER BY _loaded_at DESC, source)
      FILTER(WHERE unit_price IS NOT NULL))[1] AS price_currency,
    (ARRAY_AGG(unit_cost ORDER BY _loaded_at DESC, source) FILTER(WHERE unit_cost IS NOT NULL))[1]
      AS unit_cost,
    (ARRAY_AGG(currency ORDER BY _loaded_at DESC, source) FILTER(WHERE unit_cost IS NOT NULL))[1]
      AS cost_currency,
    (ARRAY_AGG(reorder_point ORDER BY _loaded_at DESC, source)
      FILTER(WHERE reorder_point IS NOT NULL))[1] AS reorder_point,
    @latest_dimensions(@client, 'products', '_loaded_at DESC, source')
  FROM @{client}_staging.products
  GROUP BY
    product_id
), sold AS (
  SELECT
    product_id,
    (ARRAY_AGG(product_name ORDER BY ordered_at DESC, order_id DESC)
      FILTER(WHERE product_name IS NOT NULL))[1] AS name
  FROM @{client}_staging.order_lines
  GROUP BY
    product_id
)
SELECT
  CAST(COALESCE(p.product_id, s.product_id) AS TEXT) AS product_id,
  CAST(COALESCE(p.name, s.name) AS TEXT) AS name,
  CAST(p.category AS TEXT) AS category,
  CAST(p.unit_price AS NUMERIC) AS unit_price,
  CAST(p.price_currency AS TEXT) AS price_currency,
  CAST(p.unit_cost AS NUMERIC) AS unit_cost,
  CAST(p.cost_currency AS TEXT) AS cost_currency,
  CAST(p.reorder_point AS NUMERIC) AS reorder_point,
  @carried_dimensions(@client, 'products', p)
FROM listed AS p
FULL JOIN sold AS s
  ON s.product_id = p.product_id
WHERE
  NOT COALESCE(p.product_id, s.product_id) IS NULL
