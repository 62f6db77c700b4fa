MODEL (
  name @{client}_staging.current_locations,
  kind VIEW,
  blueprints @goalpost_blueprints(),
  grain location_id
);

/* One row per location as the marts name it: the most recently loaded row of the canonical
   locations (the first source by name on a tie), so a shop renamed in a later load shows its
   new name everywhere, and two sources listing the same location_id give one name. */
SELECT
  CAST(location_id AS TEXT) AS location_id,
  CAST(name AS TEXT) AS name,
  CAST(city AS TEXT) AS city,
  CAST(opened_on AS DATE) AS opened_on
FROM (
  SELECT
    location_id,
    name,
    city,
    opened_on,
    ROW_NUMBER() OVER (PARTITION BY location_id ORDER BY _loaded_at DESC, source) AS _rank
  FROM @{client}_staging.locations
) AS ranked
WHERE
  _rank = 1
