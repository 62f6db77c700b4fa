-- The business review (goalpost.alerts.review): one row per client, period and recipient,
-- inserted before the email is sent and marked when it is, under the client's review lock, so
-- that each review goes to each recipient once however many tries and schedulers there are.
-- The rows are the history: when each review went out, how, with which subject and headline
-- figures, or why it has not yet (attempts, last_error; expired after two days of failures).
CREATE TABLE goalpost.review_deliveries (
    client      text NOT NULL,
    period      text NOT NULL CHECK (period ~ '^\d{4}-(W\d{2}|\d{2})$'),
    recipient   text NOT NULL,
    language    text NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'expired')),
    created_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz,
    channel     text CHECK (channel IN ('smtp', 'outbox')),
    message_id  text,
    subject     text,
    summary     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (client, period, recipient)
);
CREATE INDEX review_deliveries_pending ON goalpost.review_deliveries (client, status);
