-- 0017: the per-row cost of the events' CHECK constraints on localized and
-- diff (0002), which every stored event pays (docs/PERFORMANCE.md, "Row
-- cost").
--
-- octo_is_localized and octo_is_diff were SQL functions whose body holds a
-- subquery (json_each, json_array_elements): PostgreSQL cannot inline such
-- a function, so each call started and ran an executor of its own, twice
-- per stored event (~5 % of the enqueue insert's CPU), mostly for the
-- documents nearly every event carries: no localizations ('{}') and the
-- empty diff of a resource's first event or of an unchanged one ('[]').
-- The same rules, as PL/pgSQL: those two texts are answered by one
-- comparison (both are valid: an object with no entries, an array with no
-- ops), any other document by the same query as before. The constraints
-- name the functions, not their bodies, so nothing is rechecked or
-- rewritten: the rows stored were valid under these very rules.
CREATE OR REPLACE FUNCTION octo_is_localized(localized json) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF localized::text = '{}' THEN
    RETURN true;
  END IF;
  RETURN CASE WHEN json_typeof(localized) <> 'object' THEN false ELSE (
    SELECT count(*) <= 50
           AND coalesce(bool_and(octo_is_language_tag(key) AND json_typeof(value) = 'object'), true)
    FROM json_each(localized)) END;
END;
$$;

CREATE OR REPLACE FUNCTION octo_is_diff(diff json) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF diff::text = '[]' THEN
    RETURN true;
  END IF;
  RETURN CASE WHEN json_typeof(diff) <> 'array' THEN false ELSE (
    SELECT coalesce(bool_and(
             CASE WHEN json_typeof(op) <> 'object' THEN false
                  ELSE coalesce(op ->> 'op' IN ('add', 'remove', 'replace'), false)
                       AND coalesce(json_typeof(op -> 'path') = 'string', false) END), true)
    FROM json_array_elements(diff) AS op) END;
END;
$$;
