-- The scheduler: which due slots of which client were claimed, run, failed or missed, and
-- which scheduler processes are alive (their heartbeat).
CREATE TABLE goalpost.schedule_slots (
    client       text NOT NULL,
    due_at       timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('claimed', 'succeeded', 'failed', 'missed')),
    instance     text,
    run_id       bigint,
    note         text,
    claimed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    PRIMARY KEY (client, due_at)
);

CREATE TABLE goalpost.scheduler_instances (
    instance    text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    beat_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    stopped_at  timestamptz
);
