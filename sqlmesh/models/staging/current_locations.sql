MODEL (
  name @{client}_staging.current_locations,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain location_id
);

/* One row per location as the marts name it: the most recently loaded row of the canonical
   locations (the first source by name on a tie), so a shop renamed in a later load shows its
   new name everywhere, and two sources listing the same location_id give one name. Each of
   the client's dimensions on locations (dim_<name>) is the latest non-empty value any row
   gives. */
WITH dimensions AS (
  SELECT
    location_id,
    @latest_dimensions(@client, 'locations', '_loaded_at DESC, source')
  FROM @{client}_staging.locations
  GROUP BY
    location_id
)
SELECT
  CAST(r.location_id AS TEXT) AS location_id,
  CAST(r.name AS TEXT) AS name,
  CAST(r.city AS TEXT) AS city,
  CAST(r.opened_on AS DATE) AS opened_on,
  @carried_dimensions(@client, 'locations', d)
FROM (
  SELECT
    location_id,
    name,
    city,
    opened_on,
    ROW_NUMBER() OVER (PARTITION BY location_id ORDER BY _loaded_at DESC, source) AS _rank
  FROM @{client}_staging.locations
) AS r
JOIN dimensions AS d
  ON d.location_id IS NOT DISTINCT FROM r.location_id
WHERE
  r._rank = 1
