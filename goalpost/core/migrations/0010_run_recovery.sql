-- Every command looks for runs left 'running' by a process that died: find them at once.
CREATE INDEX runs_running ON goalpost.runs (client) WHERE status = 'running';

-- A client whose raw data may have changed since its last successful build. A run writes its
-- row before it extracts anything and removes it when its build succeeds; a row left by
-- another run (killed at any moment, or whose build failed) makes the next build restate
-- everything, from raw when `full_refresh` (that run was reloading raw).
CREATE TABLE goalpost.transform_pending (
    client        text PRIMARY KEY,
    run_id        bigint,
    full_refresh  boolean NOT NULL DEFAULT false,
    since         timestamptz NOT NULL DEFAULT now()
);
