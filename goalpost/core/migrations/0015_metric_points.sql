-- Metric values entered by hand (`goalpost metrics record|import`): every value ever given
-- for a point (client, metric, period, dimension value) is kept, with who gave it and when;
-- the latest one is the point's value (staging.stg_manual__metric_values). Nothing is
-- updated or deleted: a correction is a later row.
CREATE TABLE goalpost.metric_points (
    id               bigserial PRIMARY KEY,
    client           text NOT NULL,
    metric           text NOT NULL,
    period_start     date NOT NULL,
    dimension        text NOT NULL DEFAULT '',
    dimension_value  text NOT NULL DEFAULT '',
    value            numeric NOT NULL,
    recorded_by      text NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    origin           text NOT NULL,
    note             text,
    CHECK ((dimension = '') = (dimension_value = ''))
);
CREATE INDEX metric_points_point ON goalpost.metric_points
    (client, metric, period_start, dimension, dimension_value, recorded_at DESC, id DESC);

-- The newest point each client's last successful build read: a run whose client has a newer
-- one restates the models built from the points.
CREATE TABLE goalpost.metric_points_built (
    client    text PRIMARY KEY,
    through   bigint NOT NULL
);
