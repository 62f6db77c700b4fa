MODEL (
  name @{client}_marts.customer_cohorts,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (cohort_month, months_since),
  audits (
    not_null_non_blocking(columns := (cohort_month, months_since)),
    unique_combination_of_columns_non_blocking(columns := (cohort_month, months_since))
  )
);

/* Retention by monthly cohort: customers (people across sources) grouped by the month of
   their first sales receipt (any source); for each later month, how many of them bought again and what share of the
   cohort that is. Anonymous sales, returns and adjustments are left out
   (staging.sales_receipts). complete_month: false for the month the data does not cover to
   its end (see monthly_sales), whose active customers are still coming in. */
WITH purchases AS (
  SELECT DISTINCT
    customer_key AS customer_id,
    CAST(DATE_TRUNC('month', order_date) AS DATE) AS month
  FROM @{client}_staging.sales_receipts
  WHERE
    NOT customer_key IS NULL AND NOT is_return
), firsts AS (
  SELECT
    customer_id,
    MIN(month) AS cohort_month
  FROM purchases
  GROUP BY
    customer_id
), sizes AS (
  SELECT
    cohort_month,
    COUNT(*) AS cohort_size
  FROM firsts
  GROUP BY
    cohort_month
)
SELECT
  CAST(f.cohort_month AS DATE) AS cohort_month,
  CAST(
    (EXTRACT(YEAR FROM p.month) - EXTRACT(YEAR FROM f.cohort_month)) * 12
    + EXTRACT(MONTH FROM p.month) - EXTRACT(MONTH FROM f.cohort_month) AS INT
  ) AS months_since,
  CAST(s.cohort_size AS BIGINT) AS cohort_size,
  CAST(COUNT(*) AS BIGINT) AS active_customers,
  CAST(ROUND(COUNT(*) * 1.0 / s.cohort_size, 4) AS NUMERIC) AS retention_rate,
  CAST(p.month + INTERVAL '1 MONTH' - INTERVAL '1 DAY' <= MAX(a.last_complete_date) AS BOOLEAN)
    AS complete_month
FROM purchases AS p
JOIN firsts AS f
  ON f.customer_id = p.customer_id
JOIN sizes AS s
  ON s.cohort_month = f.cohort_month
CROSS JOIN @{client}_staging.data_as_of AS a
GROUP BY
  f.cohort_month,
  p.month,
  s.cohort_size
