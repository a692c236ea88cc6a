-- Event API v1 bodies -> rows of `decisions` and `conversions`, in batches (see normalize.py).
--
-- Input: the Arrow table `bodies` (idx, received_ms, client_ip, user_agent, referer, position,
-- need_decisions, need_conversions, validated, body). Statements are separated by `-- name: <name>` lines
-- and run in file order; `macros` once per connection, the others once per batch.
--
-- Every scalar of the body is read as a JSON leaf (its JSON text, or NULL when the key is
-- missing), so its JSON kind is known: `suspect` flags every record that `decode_batch` would
-- reject (and a few it would accept but the lake can't hold), and such a record yields no row.

-- name: macros
CREATE OR REPLACE TEMP MACRO absent(t) AS t IS NULL OR t = 'null';
-- A JSON string leaf's text. Only a string with an escape needs a JSON parse.
CREATE OR REPLACE TEMP MACRO jstr(t) AS CASE
    WHEN absent(t) THEN NULL
    WHEN contains(t, '\') THEN json_extract_string(t, '$')
    ELSE substr(t, 2, length(t) - 2) END;
CREATE OR REPLACE TEMP MACRO is_str(t) AS starts_with(t, '"');
CREATE OR REPLACE TEMP MACRO is_num(t) AS regexp_matches(t, '^-?[0-9]');
CREATE OR REPLACE TEMP MACRO is_int(t) AS is_num(t) AND NOT regexp_matches(t, '[.eE]');
-- Kinds msgspec accepts: a string or null (or missing), a boolean (not null), a finite number.
CREATE OR REPLACE TEMP MACRO ok_nstr(t) AS absent(t) OR is_str(t);
CREATE OR REPLACE TEMP MACRO ok_bool(t) AS t IS NULL OR t IN ('true', 'false');
CREATE OR REPLACE TEMP MACRO ok_nbool(t) AS absent(t) OR t IN ('true', 'false');
CREATE OR REPLACE TEMP MACRO ok_nobj(t) AS absent(t) OR starts_with(t, '{');
-- Any JSON but NaN and Infinity literals (DuckDB reads them, msgspec does not).
CREATE OR REPLACE TEMP MACRO ok_any(t) AS t IS NULL OR left(t, 1) IN ('"', '{', '[', 't', 'f', 'n')
    OR isfinite(TRY_CAST(t AS DOUBLE));
CREATE OR REPLACE TEMP MACRO ok_number(t) AS absent(t) OR is_str(t) OR (is_num(t) AND ok_any(t));
-- The text after the U+E000 prefix of a typed string, or NULL for anything else.
CREATE OR REPLACE TEMP MACRO typed(t) AS CASE
    WHEN is_str(t) AND starts_with(jstr(t), chr(57344)) THEN substr(jstr(t), 2) END;
-- Python's int() and float() grammars (ASCII digits, str.isspace() around, `_` between digits).
CREATE OR REPLACE TEMP MACRO py_int(x) AS CASE
    WHEN regexp_full_match(x, '[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*[+-]?[0-9]+(_[0-9]+)*[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*')
    THEN regexp_replace(x, '[^0-9+-]', '', 'g') END;
CREATE OR REPLACE TEMP MACRO py_float(x) AS CASE
    WHEN regexp_full_match(x, '[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*[+-]?([0-9](_?[0-9])*(\.([0-9](_?[0-9])*)?)?|\.[0-9](_?[0-9])*)([eE][+-]?[0-9](_?[0-9])*)?[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*')
    THEN TRY_CAST(regexp_replace(x, '[^0-9eE.+-]', '', 'g') AS DOUBLE) END;
-- revenue and quantity: an integer in int64 (-2**63 excluded), as a JSON number or typed string.
CREATE OR REPLACE TEMP MACRO int_text(t) AS CASE WHEN is_int(t) THEN CAST(t AS VARCHAR)
    ELSE py_int(typed(t)) END;
CREATE OR REPLACE TEMP MACRO as_int(t) AS CASE
    WHEN TRY_CAST(int_text(t) AS HUGEINT) BETWEEN -9223372036854775807 AND 9223372036854775807
    THEN CAST(int_text(t) AS BIGINT) END;
-- value: a finite number; a typed string is read as int() first, then float(), as Python does.
CREATE OR REPLACE TEMP MACRO as_float(t) AS CASE
    WHEN is_num(t) THEN CAST(t AS DOUBLE)
    -- + 0.0: int('-0') is 0, whose float is 0.0, not -0.0
    WHEN py_int(typed(t)) IS NOT NULL THEN TRY_CAST(py_int(typed(t)) AS DOUBLE) + 0.0
    ELSE py_float(typed(t)) END;
CREATE OR REPLACE TEMP MACRO finite(x) AS CASE WHEN isfinite(x) THEN x END;
-- A value as E3 stores it: strings as they are (a typed string: its text after the prefix),
-- booleans lowercase, numbers as Python's repr, objects and arrays as compact JSON.
CREATE OR REPLACE TEMP MACRO as_text(t) AS CASE
    WHEN absent(t) THEN NULL
    WHEN is_str(t) THEN coalesce(typed(t), jstr(t))
    WHEN is_int(t) THEN CAST(t AS VARCHAR)
    WHEN is_num(t) THEN CAST(CAST(t AS DOUBLE) AS VARCHAR)
    ELSE CAST(t AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO exp_struct(d) AS {
    'campaign_id': jstr(d.campaign_id), 'experiment_id': jstr(d.experiment_id),
    'variation_id': jstr(d.variation_id), 'is_holdback': coalesce(d.is_campaign_holdback = 'true', false)};
CREATE OR REPLACE TEMP MACRO day(ms) AS CAST(CAST(epoch_ms(ms) AS DATE) AS VARCHAR);

-- name: records
CREATE OR REPLACE TEMP TABLE r AS
SELECT idx, received_ms, client_ip, user_agent, referer, position, need_decisions,
    need_conversions,
    -- A JSON leaf reads null as missing: flag a null where only a missing key has a default.
    NOT validated AND contains(body, 'null') AND regexp_matches(body,
        '"(anonymize_ip|type|is_campaign_holdback)"\s*:\s*null') AS null_default,
    json_transform(body, '{
        "account_id": "JSON", "project_id": "JSON", "revision": "JSON", "client_name": "JSON",
        "client_version": "JSON", "enrich_decisions": "JSON", "anonymize_ip": "JSON",
        "visitors": [{"visitor_id": "JSON", "session_id": "JSON",
            "attributes": [{"entity_id": "JSON", "key": "JSON", "type": "JSON", "value": "JSON"}],
            "snapshots": [{
                "decisions": [{"campaign_id": "JSON", "experiment_id": "JSON",
                    "variation_id": "JSON", "is_campaign_holdback": "JSON", "metadata": "JSON"}],
                "events": [{"timestamp": "JSON", "uuid": "JSON", "entity_id": "JSON",
                    "key": "JSON", "type": "JSON", "revenue": "JSON", "value": "JSON",
                    "quantity": "JSON", "tags": "JSON", "properties": "JSON"}]}]}]}') AS j
FROM bodies;

-- name: events
-- One row per event of every record, with what both tables need and `suspect` for the
-- event-level checks (non-null elements, field kinds, tags with duplicate keys).
CREATE OR REPLACE TEMP TABLE ev AS
WITH v AS (
    SELECT idx, received_ms, client_ip, user_agent, referer, position, need_decisions,
        need_conversions, jstr(j.account_id) AS account_id, jstr(j.project_id) AS project_id,
        CASE WHEN is_str(j.revision) THEN jstr(j.revision) WHEN absent(j.revision) THEN NULL
            ELSE CAST(j.revision AS VARCHAR) END AS revision,
        jstr(j.client_name) AS client_engine, jstr(j.client_version) AS client_version,
        CASE j.enrich_decisions WHEN 'true' THEN true WHEN 'false' THEN false END
            AS enrich_decisions,
        unnest(j.visitors) AS v
    FROM r
), s AS (
    SELECT * EXCLUDE (v), jstr(v.visitor_id) AS visitor_id,
        nullif(jstr(v.session_id), '') AS session_id,
        list_transform(coalesce(v.attributes, []), lambda a: {
            'id': jstr(a.entity_id), 'name': jstr(a.key), 'type': coalesce(jstr(a.type), 'custom'),
            'value': as_text(a.value)}) AS attributes,
        unnest(v.snapshots) AS s
    FROM v
), e AS (
    SELECT * EXCLUDE (s), coalesce(s.decisions, []) AS decisions, unnest(s.events) AS e FROM s
)
SELECT * EXCLUDE (e), jstr(e.uuid) AS uuid, TRY_CAST(e.timestamp AS BIGINT) AS timestamp_raw,
    jstr(e.entity_id) AS entity_id, jstr(e.key) AS key, jstr(e.type) AS type,
    e.revenue, e.value, e.quantity, e.tags,
    CASE WHEN starts_with(e.tags, '{') THEN json_transform(e.tags, '"MAP(VARCHAR, JSON)"') END
        AS tag_map,
    e IS NULL OR e.uuid IS NULL OR NOT is_str(e.uuid) OR e.uuid = '""'
        OR NOT is_int(e.timestamp) OR TRY_CAST(e.timestamp AS BIGINT) IS NULL
        OR NOT (ok_nstr(e.entity_id) AND ok_nstr(e.key) AND ok_nstr(e.type))
        OR NOT (ok_number(e.revenue) AND ok_number(e.value) AND ok_number(e.quantity))
        OR NOT (ok_nobj(e.tags) AND ok_nobj(e.properties)) AS suspect
FROM e;

-- name: suspects
-- Records that fail a check above the events, or whose events do: they yield no row.
CREATE OR REPLACE TEMP TABLE bad AS
WITH v AS (SELECT idx, unnest(j.visitors) AS v FROM r),
s AS (SELECT idx, unnest(v.snapshots) AS s FROM v WHERE v IS NOT NULL)
SELECT idx FROM r
WHERE null_default OR j IS NULL OR j.visitors IS NULL OR j.account_id IS NULL
    OR NOT is_str(j.account_id)
    OR NOT (ok_nstr(j.project_id) AND ok_nstr(j.client_name) AND ok_nstr(j.client_version))
    OR NOT (ok_nstr(j.revision) OR is_int(j.revision))
    OR NOT (ok_nbool(j.enrich_decisions) AND ok_bool(j.anonymize_ip))
UNION
SELECT idx FROM v
WHERE v IS NULL OR v.visitor_id IS NULL OR NOT is_str(v.visitor_id) OR v.snapshots IS NULL
    OR NOT ok_nstr(v.session_id)
    OR NOT list_bool_and(list_transform(coalesce(v.attributes, []), lambda a: a IS NOT NULL
        AND ok_nstr(a.entity_id) AND ok_nstr(a.key) AND (a.type IS NULL OR is_str(a.type))
        AND ok_any(a.value)))
UNION
SELECT idx FROM s
WHERE s IS NULL OR s.events IS NULL
    OR NOT list_bool_and(list_transform(coalesce(s.decisions, []), lambda d: d IS NOT NULL
        AND ok_nstr(d.campaign_id) AND ok_nstr(d.experiment_id) AND ok_nstr(d.variation_id)
        AND ok_bool(d.is_campaign_holdback) AND ok_nobj(d.metadata)))
UNION
SELECT idx FROM ev WHERE suspect OR (tags IS NOT NULL AND starts_with(tags, '{') AND tag_map IS NULL);

-- name: decisions
-- An activation is matched to its snapshot's decisions by campaign_id; without a match it is
-- kept once per decision (entity_not_campaign), or once with no decision (no_decision).
WITH a AS (
    SELECT *,
        list_filter(decisions, lambda d: jstr(d.campaign_id) IS NOT DISTINCT FROM entity_id)
            AS matched,
        CASE WHEN timestamp_raw >= 1000000000000 AND timestamp_raw < 10000000000000
            THEN timestamp_raw END AS ts
    FROM ev
    WHERE need_decisions AND (key = 'campaign_activated' OR type = 'campaign_activated')
        AND idx NOT IN (SELECT idx FROM bad)
), d AS (
    SELECT * EXCLUDE (decisions, matched),
        CASE WHEN ts IS NULL THEN ['timestamp_not_ms'] ELSE [] END
            || CASE WHEN len(matched) > 0 THEN []
                WHEN len(decisions) > 0 THEN ['entity_not_campaign']
                ELSE ['no_decision'] END AS problems,
        unnest(CASE WHEN len(matched) > 0 THEN matched WHEN len(decisions) > 0 THEN decisions
            ELSE [NULL] END) AS d
    FROM a
)
SELECT day(coalesce(ts, received_ms)) AS date, uuid, ts AS timestamp, timestamp_raw,
    received_ms AS process_timestamp, visitor_id, session_id, account_id, project_id,
    jstr(d.campaign_id) AS campaign_id, jstr(d.experiment_id) AS experiment_id,
    jstr(d.variation_id) AS variation_id, entity_id,
    coalesce(d.is_campaign_holdback = 'true', false) AS is_holdback, attributes,
    client_ip AS user_ip, user_agent, referer, revision, client_engine, client_version,
    enrich_decisions, m[1] AS flag_key, m[2] AS rule_key, m[3] AS rule_type,
    m[4] AS variation_key, CASE m[5] WHEN 'true' THEN true WHEN 'false' THEN false END AS enabled, problems, 'v1' AS source,
    position AS rawlog_position
FROM (
    SELECT *, CASE WHEN starts_with(d.metadata, '{') THEN json_extract_string(d.metadata,
        ['$.flag_key', '$.rule_key', '$.rule_type', '$.variation_key', '$.enabled']) END AS m
    FROM d
);

-- name: conversions
WITH c AS (
    SELECT *, CASE WHEN timestamp_raw >= 1000000000000 AND timestamp_raw < 10000000000000
            THEN timestamp_raw END AS ts,
        as_int(revenue) AS revenue_v, finite(as_float(value)) AS value_v,
        as_int(quantity) AS quantity_v
    FROM ev
    WHERE need_conversions AND NOT (key IS NOT DISTINCT FROM 'campaign_activated'
            OR type IS NOT DISTINCT FROM 'campaign_activated')
        AND idx NOT IN (SELECT idx FROM bad)
)
SELECT day(coalesce(ts, received_ms)) AS date, uuid, ts AS timestamp, timestamp_raw,
    received_ms AS process_timestamp, visitor_id, session_id, account_id, project_id,
    list_transform(decisions, lambda d: exp_struct(d)) AS experiments, entity_id, attributes,
    client_ip AS user_ip, user_agent, referer, type AS event_type, key AS event_name,
    revenue_v AS revenue, value_v AS value, quantity_v AS quantity,
    map_from_entries(list_transform(map_entries(tag_map),
        lambda x: {'key': x.key, 'value': as_text(x.value)})) AS tags,
    revision, client_engine, client_version, enrich_decisions,
    CASE WHEN ts IS NULL THEN ['timestamp_not_ms'] ELSE [] END
        || CASE WHEN NOT absent(revenue) AND revenue_v IS NULL
            THEN ['revenue_not_integer'] ELSE [] END
        || CASE WHEN NOT absent(value) AND value_v IS NULL THEN ['value_not_number'] ELSE [] END
        || CASE WHEN NOT absent(quantity) AND quantity_v IS NULL
            THEN ['quantity_not_integer'] ELSE [] END AS problems,
    'v1' AS source, position AS rawlog_position
FROM c;
