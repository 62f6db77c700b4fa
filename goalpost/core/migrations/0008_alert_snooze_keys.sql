-- A snooze may silence one key of a rule (one product at one shop) instead of the whole rule:
-- key '' stands for the whole rule.
ALTER TABLE goalpost.alert_snoozes ADD COLUMN key text NOT NULL DEFAULT '';
ALTER TABLE goalpost.alert_snoozes DROP CONSTRAINT alert_snoozes_pkey;
ALTER TABLE goalpost.alert_snoozes ADD PRIMARY KEY (client, rule, key);
