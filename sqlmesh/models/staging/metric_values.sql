MODEL (
  name @{client}_staging.metric_values,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  audits (
    metric_values_valid,
    one_value_per_point
  )
);

/* Canonical metric values: every source's (files, REST APIs, values entered by hand), one row
   per value, with `problem` saying why a value cannot count (a metric that is not one of the
   client's input metrics, a date that does not start the metric's period, a dimension it is
   not computed per). The blocking audits are here: a bad value keeps what is built from the
   metric values (kpi_values and the marts over it) as it was until the data is fixed. */
@checked_metric_values(@client)
