MODEL (
  name @{client}_staging.stg_hubspot__customers,
  kind FULL,
  blueprints @goalpost_blueprints('hubspot'),
  grain (source, customer_id),
  audits (
    not_null_non_blocking(columns := (source, customer_id)),
    unique_combination_of_columns(columns := (source, customer_id))
  )
);

/* HubSpot contacts (CRM search by last modification) as customers. How HubSpot reports the
   contacts that are gone:
   - a deleted contact is archived: search stops returning it and nothing moves its modified
     date, so the row read before stays in contacts. The archived_contacts stream (read whole
     every run) lists it: a contact archived at or after its last modification is left out (one
     restored since was modified again, and is kept).
   - a merge makes a record (a new id today; formerly the primary's id) whose
     hs_merged_object_ids lists the ids folded into it, and those leave search without being
     listed as archived: a contact named there by another contact is left out, and the merged
     one kept.
   Emails are trimmed and lower-cased (HubSpot matches them case-insensitively), names
   trimmed, the phone kept as HubSpot holds it; created_at is createdate in local time. */
@canonical_select(
  'customers',
  (
    WITH contacts AS (
      SELECT
        r.source,
        r._key,
        r._loaded_at,
        r.data
      FROM @raw_stream(@client, 'hubspot', 'contacts') AS r
      WHERE
        NOT r._deleted
    ), archived AS (
      SELECT
        a.source,
        a.data ->> 'id' AS contact_id,
        CAST(a.data ->> 'archivedAt' AS TIMESTAMPTZ) AS archived_at
      FROM @raw_lookup(@client, 'hubspot', 'archived_contacts') AS a
      WHERE
        a._deleted
    ), merged_away AS (
      SELECT DISTINCT
        c.source,
        BTRIM(m.contact_id) AS contact_id
      FROM contacts AS c
      CROSS JOIN LATERAL UNNEST(
        STRING_TO_ARRAY(c.data #>> '{properties,hs_merged_object_ids}', ';')
      ) AS m(contact_id)
      WHERE
        BTRIM(m.contact_id) <> c.data ->> 'id'
    )
    SELECT
        c.source AS source,
        c._key AS _key,
        c._loaded_at AS _loaded_at,
        c.data ->> 'id' AS customer_id,
        NULLIF(BTRIM(c.data #>> '{properties,firstname}'), '') AS first_name,
        NULLIF(BTRIM(c.data #>> '{properties,lastname}'), '') AS last_name,
        NULLIF(LOWER(BTRIM(c.data #>> '{properties,email}')), '') AS email,
        NULLIF(c.data #>> '{properties,phone}', '') AS phone,
        NULLIF(BTRIM(c.data #>> '{properties,country}'), '') AS country,
        @local_time(
          @client, COALESCE(c.data #>> '{properties,createdate}', c.data ->> 'createdAt')
        ) AS created_at
    FROM contacts AS c
    WHERE
      NOT EXISTS(
        SELECT
          1
        FROM archived AS a
        WHERE
          a.source = c.source
          AND a.contact_id = c.data ->> 'id'
          AND (
            a.archived_at IS NULL
            OR a.archived_at >= CAST(c.data ->> 'updatedAt' AS TIMESTAMPTZ)
          )
      )
      AND NOT EXISTS(
        SELECT
          1
        FROM merged_away AS m
        WHERE
          m.source = c.source AND m.contact_id = c.data ->> 'id'
      )
  )
)
