-- Runs report checks that never block them (source freshness) as steps of their own kind.
ALTER TABLE goalpost.run_steps DROP CONSTRAINT run_steps_kind_check;
ALTER TABLE goalpost.run_steps ADD CONSTRAINT run_steps_kind_check
    CHECK (kind IN ('extract', 'transform', 'check', 'extension', 'alert'));
