-- What `goalpost metabase apply` provisioned in Metabase, per client: the object's stable key,
-- its Metabase id (and entity_id where Metabase has one), and what was sent (payload, with
-- ids as symbolic references and secrets hashed; fingerprint = its sha256). An object not in
-- this table was made by hand and is never updated or deleted by Goalpost.
CREATE TABLE goalpost.metabase_objects (
    client      text        NOT NULL,
    kind        text        NOT NULL,
    key         text        NOT NULL,
    metabase_id bigint      NOT NULL,
    entity_id   text,
    fingerprint text        NOT NULL,
    payload     jsonb       NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, kind, key)
);
