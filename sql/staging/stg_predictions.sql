{{ config(materialized='view', cache=true) }}
{#-
  Every logged prediction of the run's window, its JSON inputs parsed and typed, and why it cannot be used
  (quarantine_reason, NULL when it can). The feature models read the usable rows; quarantine keeps the others.
  Cached: three feature models and the quarantine read it.
-#}
{%- set numbers = ['age', 'bmi', 'glucose', 'blood_pressure', 'insulin', 'pregnancies', 'resting_bp', 'cholesterol',
                   'max_heart_rate', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set labs = ['glucose', 'insulin', 'cholesterol', 'total_bilirubin', 'alkaline_phosphatase', 'alt', 'ast', 'albumin'] %}
{%- set categories = ['sex', 'physical_activity', 'chest_pain_type', 'alcohol_use'] %}
{%- set flags = ['family_history', 'exercise_angina', 'smoker'] %}
WITH extracted AS (
  -- Bare get_json_object calls only, so Spark parses each record's JSON once for all of them.
  SELECT
    *,
    {%- for key in numbers + categories + flags %}
    {{ json_field(key) }} AS {{ key }}_text,
    {%- endfor %}
    {{ json_root() }} AS json_root
  FROM {{ source('predictions') }}
),
parsed AS (
  SELECT
    id AS record_id,
    user_id,
    LOWER(TRIM(record_type)) AS record_type,
    data,
    prediction,
    confidence,
    model_version,
    LOWER(TRIM(verified_outcome)) AS verified_outcome,
    created_at,
    {{ is_json_object('json_root') }} AS is_json,
    {%- for key in numbers %}
    {{ to_double(key ~ '_text') }} AS {{ key }},
    {%- endfor %}
    {%- for key in categories %}
    {{ to_category(key ~ '_text') }} AS {{ key }},
    {%- endfor %}
    {%- for key in flags %}
    {{ to_flag(key ~ '_text') }} AS {{ key }},
    {%- endfor %}
    -- The same submission logged twice: same user, type, inputs and time; the first id wins.
    ROW_NUMBER() OVER (PARTITION BY user_id, record_type, data, created_at ORDER BY id) AS submission
  FROM extracted
)
SELECT
  * EXCEPT (is_json, submission),
  CASE
    WHEN NOT is_json THEN 'malformed_json'
    WHEN COALESCE(record_type, '') NOT IN ({{ var('record_types') }}) THEN 'unknown_record_type'
    WHEN age < 0 OR age > 120 OR bmi <= 0
      {%- for key in labs %} OR {{ key }} < 0{% endfor %} THEN 'impossible_value'
    WHEN submission > 1 THEN 'duplicate'
    -- Last, so that a hostile outcome never moves a row out of the reasons above.
    WHEN verified_outcome NOT IN ({{ var('outcomes') }}) THEN 'unknown_outcome'
  END AS quarantine_reason
FROM parsed
