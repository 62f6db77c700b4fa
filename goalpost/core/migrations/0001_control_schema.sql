-- The control plane: what Goalpost knows about clients, sources, runs and extract state.
CREATE TABLE goalpost.clients (
    slug        text PRIMARY KEY,
    name        text NOT NULL,
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE goalpost.sources (
    client      text NOT NULL REFERENCES goalpost.clients (slug) ON DELETE CASCADE,
    name        text NOT NULL,
    connector   text NOT NULL,
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, name)
);

CREATE TABLE goalpost.runs (
    id            bigserial PRIMARY KEY,
    client        text NOT NULL,
    trigger       text NOT NULL DEFAULT 'cli',
    full_refresh  boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    error         text,
    summary       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX runs_client_started ON goalpost.runs (client, started_at DESC);

CREATE TABLE goalpost.run_steps (
    id                bigserial PRIMARY KEY,
    run_id            bigint NOT NULL REFERENCES goalpost.runs (id) ON DELETE CASCADE,
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('extract', 'transform', 'extension', 'alert')),
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    started_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at       timestamptz,
    rows_loaded       bigint NOT NULL DEFAULT 0,
    rows_quarantined  bigint NOT NULL DEFAULT 0,
    details           jsonb NOT NULL DEFAULT '{}'::jsonb,
    error             text
);
CREATE INDEX run_steps_run ON goalpost.run_steps (run_id);

-- Cursor and free-form state of one stream; advanced in the transaction that loads its rows.
CREATE TABLE goalpost.extract_state (
    client      text NOT NULL,
    source      text NOT NULL,
    stream      text NOT NULL,
    cursor      jsonb,
    state       jsonb NOT NULL DEFAULT '{}'::jsonb,
    run_id      bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, source, stream)
);

-- Files already loaded by file sources, by content hash, with the dialect they were read with.
-- Raw rows point here by `_file_id`; their cells are read through `dialect -> 'positions'`.
CREATE TABLE goalpost.source_files (
    id                bigserial UNIQUE,
    client            text NOT NULL,
    source            text NOT NULL,
    stream            text NOT NULL,
    sha256            text NOT NULL,
    path              text NOT NULL,
    size_bytes        bigint NOT NULL,
    rows_loaded       bigint NOT NULL,
    rows_quarantined  bigint NOT NULL,
    dialect           jsonb NOT NULL,
    run_id            bigint,
    loaded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, source, stream, sha256)
);

-- Records that could not be read, kept with the reason so nothing is silently dropped.
CREATE TABLE goalpost.quarantine (
    id          bigserial PRIMARY KEY,
    client      text NOT NULL,
    source      text NOT NULL,
    stream      text NOT NULL,
    run_id      bigint,
    file        text,
    row_number  bigint,
    reason      text NOT NULL,
    record      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_client_stream ON goalpost.quarantine (client, source, stream);
