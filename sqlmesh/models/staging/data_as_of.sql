MODEL (
  name @{client}_staging.data_as_of,
  kind VIEW,
  blueprints @goalpost_blueprints()
);

/* How far the client's data goes, one row. It is never the clock, so a rebuild of the same
   data gives the same figures, and a client whose data stopped coming is seen as of its last
   data.
   as_of: the latest local date of a sale, a return or a stock count (what the inventory
   marts are "as of"); sales_as_of: that of a sale or return (sales_since: the first);
   stock_as_of: that of a count.
   last_complete_date: the last day whose sales are all in. The newest sales day is complete
   when the data was loaded after that day ended (local time: a load at 14:00 has the
   morning only) and its last sale is no earlier than the earliest last sale of the 28 days
   before it (an export cut at noon has a day that stops early), when there are at least 7
   such days to judge by; otherwise the day before it is the last complete one. Without
   sales: the latest count's date. loaded_at: the newest sales line's load time. */
WITH days AS (
  SELECT
    order_date,
    MAX(ordered_at) AS last_sale
  FROM @{client}_staging.sales_receipts
  GROUP BY
    order_date
), newest AS (
  SELECT
    d.order_date AS day,
    d.last_sale
  FROM days AS d
  ORDER BY
    d.order_date DESC
  LIMIT 1
), history AS (
  SELECT
    MIN(CAST(d.last_sale AS TIME)) AS earliest_close,
    COUNT(*) AS days
  FROM days AS d
  CROSS JOIN newest AS n
  WHERE
    d.order_date BETWEEN n.day - 28 AND n.day - 1
), first_day AS (
  SELECT
    MIN(order_date) AS day
  FROM days
), loaded AS (
  SELECT
    MAX(_loaded_at) AS loaded_at
  FROM @{client}_staging.order_lines
), counted AS (
  SELECT
    MAX(counted_on) AS stock_as_of
  FROM @{client}_staging.inventory_levels
)
SELECT
  CAST(GREATEST(n.day, c.stock_as_of) AS DATE) AS as_of,
  CAST(n.day AS DATE) AS sales_as_of,
  CAST(f.day AS DATE) AS sales_since,
  CAST(c.stock_as_of AS DATE) AS stock_as_of,
  CAST(
    CASE
      WHEN n.day IS NULL
      THEN c.stock_as_of
      WHEN @local_time(@client, l.loaded_at) >= n.day + 1
      AND (
        COALESCE(h.days, 0) < 7 OR CAST(n.last_sale AS TIME) >= h.earliest_close
      )
      THEN n.day
      ELSE n.day - 1
    END AS DATE
  ) AS last_complete_date,
  CAST(l.loaded_at AS TIMESTAMPTZ) AS loaded_at
FROM counted AS c
CROSS JOIN loaded AS l
CROSS JOIN first_day AS f
LEFT JOIN newest AS n
  ON TRUE
LEFT JOIN history AS h
  ON TRUE
