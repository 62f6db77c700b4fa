MODEL (
  name @{client}_marts.kpi_values,
  kind FULL,
  blueprints @goalpost_blueprints(),
  grain (metric, grain, period_start, dimension, dimension_value),
  audits (
    not_null_non_blocking(columns := (metric, grain, period_start, dimension, dimension_value)),
    unique_combination_of_columns_non_blocking(
      columns := (metric, grain, period_start, dimension, dimension_value)
    )
  )
);

/* One row per metric, grain, period and dimension value: every metric of the client's
   registry at its rhythm (day, week or month) and at the coarser grains its periods add up
   to, in total (dimension 'all') and per value of its dimensions. Metrics over receipts are
   computed from the receipts at each grain, input metrics (files, APIs, values entered by
   hand) and SQL metrics come at their rhythm and roll up by their aggregation, formulas are
   computed from their parts' values of the same period. `complete`: the period is all in
   (sales up to data_as_of.last_complete_date; every day of a week or month of values). */
@kpi_values(@client)
