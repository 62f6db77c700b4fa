-- Quarantined file rows: the file entry they came from, whether they are unreadable
-- ('invalid': staging could not read them; fix the file) or readable but probably wrong
-- ('suspect': a sale dated in the future), and for suspect rows their cells and key, so that a
-- person can release them into raw (`goalpost quarantine release`). A released row is loaded
-- by the next run of its client (released_run_id), and again by every full refresh.
ALTER TABLE goalpost.quarantine
    ADD COLUMN file_id          bigint,
    ADD COLUMN kind             text NOT NULL DEFAULT 'invalid'
                                CHECK (kind IN ('invalid', 'suspect')),
    ADD COLUMN cells            jsonb,
    ADD COLUMN row_key          text,
    ADD COLUMN released_at      timestamptz,
    ADD COLUMN released_run_id  bigint,
    ADD CONSTRAINT quarantine_release_suspect_only
        CHECK (released_at IS NULL OR (kind = 'suspect' AND cells IS NOT NULL));

UPDATE goalpost.quarantine AS q SET file_id = f.id
FROM goalpost.source_files AS f
WHERE f.client = q.client AND f.source = q.source AND f.stream = q.stream AND f.path = q.file
  AND f.run_id IS NOT DISTINCT FROM q.run_id;

CREATE INDEX quarantine_file ON goalpost.quarantine (file_id);
