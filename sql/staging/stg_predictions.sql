{{ config(materialized='table') }}
{#-
  Every logged prediction of the run's window, its JSON inputs parsed and typed, and why it cannot be used
  (quarantine_reason, NULL when it can). The feature models read the usable rows; quarantine keeps the others.
  A table: written once, then three feature models and the quarantine read only the columns and rows they need.
-#}
{%- set numbers = ['age', 'bmi', 'glucose', 'blood_pressure', 'insulin', 'pregnancies', 'resting_bp', 'cholesterol',
                   'max_heart_rate', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set labs = ['glucose', 'insulin', 'cholesterol', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set categories = ['sex', 'physical_activity', 'chest_pain_type', 'alcohol_use'] %}
{%- set flags = ['family_history', 'exercise_angina', 'smoker'] %}
WITH extracted AS (
  -- One parse of each record's JSON for all the keys.
  SELECT
    *,
    {{ json_document(numbers + categories + flags) }} AS doc
  FROM {{ source('predictions') }}
),
repeats AS (
  -- The same submission logged twice: same user, type, inputs and time; the first id wins.
  {{ later_duplicates(source('predictions'), ['user_id', 'record_type', 'data', 'created_at'],
                      narrow=['user_id', 'created_at']) }}
),
parsed AS (
  SELECT /*+ BROADCAST(repeats) */
    extracted.id AS record_id,
    user_id,
    LOWER(TRIM(record_type)) AS record_type,
    data,
    prediction,
    confidence,
    model_version,
    -- Labels as of the run: an outcome verified at or after the run's data_interval_end was not known then, so it
    -- is NULL here and re-running an old ds sees the same labels. An outcome without verified_at (a database
    -- without the column) cannot be dated and counts as known.
    CASE WHEN verified_at IS NULL OR verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN LOWER(TRIM(verified_outcome)) END AS verified_outcome,
    CASE WHEN verified_outcome IS NOT NULL AND verified_at < TIMESTAMP '{{ data_interval_end }}'
      THEN verified_at END AS verified_at,
    created_at,
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
