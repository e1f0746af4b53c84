{{ config(materialized='incremental', incremental_strategy='insert_overwrite') }}
{#-
  Every logged prediction of the run's window, its JSON inputs parsed and typed, and why it cannot be used
  (quarantine_reason, NULL when it can). The feature models read the usable rows; quarantine keeps the others.

  Incremental: a record's JSON is parsed once in its lifetime. A weekly run parses only the records its previous
  output lacks, and keeps the others' rows from that output ({{ this }}). Everything that can change after a record
  was written comes from this run's source instead: the outcome and its date, whether the record is still there
  (deleted, consent withdrawn, out of the window: gone), and whether it repeats another. Only ids and labels are
  compared, in two joins (new_records, changed); the few rows that differ are broadcast, so no wide row is
  shuffled. The whole table is written again each week (insert_overwrite), so it is always exactly what a full
  refresh would write. After changing how a value is parsed, rebuild it: `retrain transform --full-refresh`.
-#}
{%- set numbers = ['age', 'bmi', 'glucose', 'blood_pressure', 'insulin', 'pregnancies', 'resting_bp', 'cholesterol',
                   'max_heart_rate', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set labs = ['glucose', 'insulin', 'cholesterol', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set categories = ['sex', 'physical_activity', 'chest_pain_type', 'alcohol_use'] %}
{%- set flags = ['family_history', 'exercise_angina', 'smoker'] %}
{#- Labels as of the run: an outcome verified at or after the run's data_interval_end was not known then, so it is
    NULL here and re-running an old ds sees the same labels. An outcome without verified_at (a database without the
    column) cannot be dated and counts as known. -#}
{%- macro outcome(record) -%}
CASE WHEN {{ record }}.verified_at IS NULL OR {{ record }}.verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN LOWER(TRIM({{ record }}.verified_outcome)) END
{%- endmacro %}
{%- macro outcome_date(record) -%}
CASE WHEN {{ record }}.verified_outcome IS NOT NULL AND {{ record }}.verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN {{ record }}.verified_at END
{%- endmacro %}
WITH
{%- if is_incremental() %}
new_records AS (
  -- The records of this run that the previous output lacks: their JSON is parsed below, and only theirs.
  SELECT id FROM {{ source('predictions') }}
  LEFT ANTI JOIN (SELECT record_id FROM {{ this }}) AS parsed_before ON parsed_before.record_id = id
),
changed AS (
  -- The previous output's records that are gone from this run (deleted, consent withdrawn, out of the window) or
  -- whose label changed since: one join, by id and label only (no JSON moves), and few rows, so broadcast below.
  SELECT
    parsed_before.record_id,
    records.id IS NULL AS is_gone,
    {{ outcome('records') }} AS outcome_now,
    {{ outcome_date('records') }} AS outcome_date_now
  FROM (SELECT record_id, verified_outcome, verified_at FROM {{ this }}) AS parsed_before
  LEFT JOIN (SELECT id, verified_outcome, verified_at FROM {{ source('predictions') }}) AS records
    ON records.id = parsed_before.record_id
  WHERE records.id IS NULL
     OR NOT ({{ outcome('records') }} <=> parsed_before.verified_outcome
             AND {{ outcome_date('records') }} <=> parsed_before.verified_at)
),
{%- endif %}
extracted AS (
  -- One parse of each new record's JSON for all the keys.
  SELECT {% if is_incremental() %}/*+ BROADCAST(new_records) */ {% endif %}
    records.*,
    {{ json_document(numbers + categories + flags) }} AS doc
  FROM {{ source('predictions') }} AS records
  {%- if is_incremental() %}
  LEFT SEMI JOIN new_records ON new_records.id = records.id
  {%- endif %}
),
repeats AS (
  -- The same submission logged twice: same user, type, inputs and time; the first id wins.
  {{ later_duplicates(source('predictions'), ['user_id', 'record_type', 'data', 'created_at'],
                      narrow=['user_id', 'created_at']) }}
),
parsed AS (
  SELECT
    extracted.id AS record_id,
    user_id,
    LOWER(TRIM(record_type)) AS record_type,
    data,
    prediction,
    confidence,
    model_version,
    {{ outcome('extracted') }} AS verified_outcome,
    {{ outcome_date('extracted') }} AS verified_at,
    created_at,
    {{ is_json_object('doc') }} AS is_json,
    {%- for key in numbers %}
    {{ to_double('doc.' ~ key) }} AS {{ key }},
    {%- endfor %}
    {%- for key in categories %}
    {{ to_category('doc.' ~ key) }} AS {{ key }},
    {%- endfor %}
    {%- for key in flags %}
    {{ to_flag('doc.' ~ key) }} AS {{ key }}{{ ',' if not loop.last }}
    {%- endfor %}
  FROM extracted
  {%- if is_incremental() %}
  UNION ALL
  -- The records parsed in an earlier week that are still in the window, as parsed then, with this run's label. The
  -- few that are gone or relabelled are broadcast: the previous output's rows are not shuffled.
  SELECT /*+ BROADCAST(changed) */
    parsed_before.record_id,
    parsed_before.user_id,
    parsed_before.record_type,
    parsed_before.data,
    parsed_before.prediction,
    parsed_before.confidence,
    parsed_before.model_version,
    IF(changed.record_id IS NULL, parsed_before.verified_outcome, changed.outcome_now) AS verified_outcome,
    IF(changed.record_id IS NULL, parsed_before.verified_at, changed.outcome_date_now) AS verified_at,
    parsed_before.created_at,
    -- malformed_json is the first reason checked and depends on the JSON alone, so it says whether it parsed.
    parsed_before.quarantine_reason IS DISTINCT FROM 'malformed_json' AS is_json,
    {%- for key in numbers + categories + flags %}
    parsed_before.{{ key }}{{ ',' if not loop.last }}
    {%- endfor %}
  FROM {{ this }} AS parsed_before
  LEFT JOIN changed ON changed.record_id = parsed_before.record_id
  WHERE changed.is_gone IS NOT TRUE
  {%- endif %}
),
flagged AS (
  -- Repeats are found over the whole window (a submission logged again a week later repeats an earlier week's),
  -- and joined once, after the union: few rows, broadcast.
  SELECT /*+ BROADCAST(repeats) */ parsed.*, repeats.id IS NOT NULL AS is_repeat
  FROM parsed
  LEFT JOIN repeats ON repeats.id = parsed.record_id
)
SELECT
  * EXCEPT (is_json, is_repeat),
  CASE
    WHEN NOT is_json THEN 'malformed_json'
    WHEN COALESCE(record_type, '') NOT IN ({{ var('record_types') }}) THEN 'unknown_record_type'
    WHEN age < 0 OR age > 120 OR bmi <= 0
      {%- for key in labs %} OR {{ key }} < 0{% endfor %} THEN 'impossible_value'
    WHEN is_repeat THEN 'duplicate'
    -- Last, so that a hostile outcome never moves a row out of the reasons above.
    WHEN verified_outcome NOT IN ({{ var('outcomes') }}) THEN 'unknown_outcome'
  END AS quarantine_reason
FROM flagged
