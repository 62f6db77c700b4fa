-- The rows of a table as jsonb, or no rows when the table does not exist (yet): an
-- extension's inputs may then read what another extension writes without failing before that
-- one has run or when a client switched it off (goals read the forecasts when there are any).
-- Runs with the caller's privileges.
CREATE FUNCTION goalpost.rows_if_exists(relation text) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF to_regclass(relation) IS NOT NULL THEN
        RETURN QUERY EXECUTE format('SELECT to_jsonb(t) FROM %s AS t', to_regclass(relation));
    END IF;
END
$$;
