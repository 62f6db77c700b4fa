MODEL (
  name @{client}_marts.data_as_of,
  kind FULL,
  blueprints @goalpost_blueprints()
);

/* How far the client's data goes, one row (staging.data_as_of): what dashboards count their
   default dates back from, and what the extensions must not judge past.
   as_of_date: the newest business date (a sale, a return or a stock count; NULL, like the
   other dates, while the client has neither: a CRM alone);
   last_complete_date: the last day whose data is complete (the newest day when it is all in,
   else the day before); partial_day: the newest sales day is not complete;
   last_complete_month: the first day of the latest month whose days are all complete, from
   the month of the first sale (NULL before one is); loaded_at: when the newest sales data was loaded. */
SELECT
  CAST(a.as_of AS DATE) AS as_of_date,
  CAST(a.last_complete_date AS DATE) AS last_complete_date,
  CAST(COALESCE(a.sales_as_of > a.last_complete_date, FALSE) AS BOOLEAN) AS partial_day,
  CAST(
    CASE WHEN m.month >= DATE_TRUNC('MONTH', a.sales_since) THEN m.month END AS DATE
  ) AS last_complete_month,
  CAST(a.sales_as_of AS DATE) AS sales_as_of_date,
  CAST(a.stock_as_of AS DATE) AS stock_as_of_date,
  CAST(a.loaded_at AS TIMESTAMPTZ) AS loaded_at
FROM @{client}_staging.data_as_of AS a
CROSS JOIN LATERAL (
  /* the month of the last complete day if that day ends it, else the month before */
  SELECT
    DATE_TRUNC('MONTH', a.last_complete_date + 1) - INTERVAL '1 MONTH' AS month
) AS m
