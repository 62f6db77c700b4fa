-- Every table an extension wrote, with the fingerprint of what it was computed from: a job
-- whose inputs, version and settings did not change is not run again.
CREATE TABLE goalpost.extension_runs (
    id          bigserial PRIMARY KEY,
    client      text NOT NULL,
    extension   text NOT NULL,
    run_id      bigint,
    version     text NOT NULL,
    input_hash  text NOT NULL,
    rows        bigint NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX extension_runs_client ON goalpost.extension_runs (client, extension, id DESC);
