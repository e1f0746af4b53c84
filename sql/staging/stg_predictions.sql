{{ config(materialized='incremental', incremental_strategy='insert_overwrite') }}
{#-
  Every logged prediction of the run's window, its JSON inputs parsed and typed, and why it cannot be used
  (quarantine_reason, NULL when it can). The feature models read the usable rows; quarantine keeps the others.

  Incremental: a record's JSON is parsed once in its lifetime. A weekly run parses only the records its previous
  output lacks, and takes the parsed values of the others from that output ({{ this }}). Everything that can change
  after a record was written comes from this run's source instead: the outcome and its date, whether the record is
  still there (deleted, consent withdrawn, out of the window: gone), and whether it repeats another. The whole table
  is written again each week (insert_overwrite), so it is always exactly what a full refresh would write. After
  changing how a value is parsed, rebuild it: `retrain transform --full-refresh`.
-#}
{%- set numbers = ['age', 'bmi', 'glucose', 'blood_pressure', 'insulin', 'pregnancies', 'resting_bp', 'cholesterol',
                   'max_heart_rate', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set labs = ['glucose', 'insulin', 'cholesterol', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set categories = ['sex', 'physical_activity', 'chest_pain_type', 'alcohol_use'] %}
{%- set flags = ['family_history', 'exercise_angina', 'smoker'] %}
{%- macro record_columns(record) %}
    {{ record }}.id AS record_id,
    {{ record }}.user_id,
    LOWER(TRIM({{ record }}.record_type)) AS record_type,
    {{ record }}.data,
    {{ record }}.prediction,
    {{ record }}.confidence,
    {{ record }}.model_version,
    -- Labels as of the run: an outcome verified at or after the run's data_interval_end was not known then, so it
    -- is NULL here and re-running an old ds sees the same labels. An outcome without verified_at (a database
    -- without the column) cannot be dated and counts as known.
    CASE WHEN {{ record }}.verified_at IS NULL OR {{ record }}.verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN LOWER(TRIM({{ record }}.verified_outcome)) END AS verified_outcome,
    CASE WHEN {{ record }}.verified_outcome IS NOT NULL AND {{ record }}.verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN {{ record }}.verified_at END AS verified_at,
    {{ record }}.created_at,
{%- endmacro %}
WITH extracted AS (
  -- One parse of each new record's JSON for all the keys.
  SELECT
    records.*,
    {{ json_document(numbers + categories + flags) }} AS doc
  FROM {{ source('predictions') }} AS records
  {%- if is_incremental() %}
  LEFT ANTI JOIN {{ this }} AS parsed_before ON parsed_before.record_id = records.id
  {%- endif %}
),
repeats AS (
  -- The same submission logged twice: same user, type, inputs and time; the first id wins.
  {{ later_duplicates(source('predictions'), ['user_id', 'record_type', 'data', 'created_at'],
                      narrow=['user_id', 'created_at']) }}
),
parsed AS (
  SELECT /*+ BROADCAST(repeats) */
    {{- record_columns('extracted') }}
    {{ is_json_object('doc') }} AS is_json,
    {%- for key in numbers %}
    {{ to_double('doc.' ~ key) }} AS {{ key }},
    {%- endfor %}
    {%- for key in categories %}
    {{ to_category('doc.' ~ key) }} AS {{ key }},
    {%- endfor %}
    {%- for key in flags %}
    {{ to_flag('doc.' ~ key) }} AS {{ key }},
    {%- endfor %}
    repeats.id IS NOT NULL AS is_repeat
  FROM extracted
  LEFT JOIN repeats ON repeats.id = extracted.id
  {%- if is_incremental() %}
  UNION ALL
  -- The records parsed in an earlier week that are still in the window: their parsed values, today's labels.
  SELECT /*+ BROADCAST(repeats) */
    {{- record_columns('records') }}
    -- malformed_json is the first reason checked and depends on the JSON alone, so it says whether it parsed.
    parsed_before.quarantine_reason IS DISTINCT FROM 'malformed_json' AS is_json,
    {%- for key in numbers + categories + flags %}
    parsed_before.{{ key }},
    {%- endfor %}
    repeats.id IS NOT NULL AS is_repeat
  FROM {{ source('predictions') }} AS records
  JOIN {{ this }} AS parsed_before ON parsed_before.record_id = records.id
  LEFT JOIN repeats ON repeats.id = records.id
  {%- endif %}
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
FROM parsed
