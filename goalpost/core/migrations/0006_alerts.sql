-- Alerts: every evaluation of a client's rules, the state of each rule per dimension value
-- (what was last said, so nothing is sent twice for the same situation), snoozes, the queue
-- of notifications per recipient (held in quiet hours, retried when delivery fails), and a
-- history of every outcome and delivery attempt.
CREATE TABLE goalpost.alert_evaluations (
    id            bigserial PRIMARY KEY,
    client        text NOT NULL,
    run_id        bigint,
    trigger       text NOT NULL CHECK (trigger IN ('run', 'check', 'test')),
    evaluated_at  timestamptz NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    summary       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alert_evaluations_client ON goalpost.alert_evaluations (client, id DESC);

-- status firing: the condition holds since `since`; notified_at is when the recipients were
-- last told of this episode (NULL: not yet, e.g. snoozed). ok: it recovered (re-armed).
CREATE TABLE goalpost.alert_state (
    client         text NOT NULL,
    rule           text NOT NULL,
    key            text NOT NULL,
    status         text NOT NULL CHECK (status IN ('firing', 'ok')),
    condition      text NOT NULL DEFAULT '',
    label          text NOT NULL DEFAULT '',
    since          timestamptz NOT NULL,
    notified_at    timestamptz,
    evaluated_at   timestamptz NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (client, rule, key)
);

CREATE TABLE goalpost.alert_snoozes (
    client      text NOT NULL,
    rule        text NOT NULL,
    until       timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (client, rule)
);

-- One notification for one recipient; the pending ones of a recipient go out together as one
-- digest email. not_before holds them through quiet hours.
CREATE TABLE goalpost.alert_outbox (
    id             bigserial PRIMARY KEY,
    client         text NOT NULL,
    evaluation_id  bigint REFERENCES goalpost.alert_evaluations (id) ON DELETE SET NULL,
    rule           text NOT NULL,
    key            text NOT NULL,
    recipient      text NOT NULL,
    severity       text NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('fired', 'reminded', 'test')),
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    not_before     timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'expired')),
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    sent_at        timestamptz,
    channel        text CHECK (channel IN ('smtp', 'outbox')),
    message_id     text
);
CREATE INDEX alert_outbox_pending ON goalpost.alert_outbox (client, status, not_before);

CREATE TABLE goalpost.alert_events (
    id             bigserial PRIMARY KEY,
    client         text NOT NULL,
    evaluation_id  bigint REFERENCES goalpost.alert_evaluations (id) ON DELETE SET NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    rule           text,
    key            text,
    event          text NOT NULL CHECK (event IN (
                       'evaluated', 'fired', 'reminded', 'recovered', 'snoozed', 'held',
                       'error', 'delivery', 'expired')),
    status         text NOT NULL,
    recipient      text,
    attempt        integer,
    error          text,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alert_events_client ON goalpost.alert_events (client, id DESC);
