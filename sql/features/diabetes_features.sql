{{ config(materialized='table', partition_by=['created_month'], repartition=4) }}
-- Diabetes screening features, one row per usable record. label: 1 positive, 0 negative, NULL not verified yet.
SELECT
  record_id,
  -- The patient: the grouping key of the holdout, never a feature.
  user_id,
  created_at,
  -- When the label's outcome was written (NULL while unverified, or when the database cannot date it).
  verified_at,
  DATE_FORMAT(created_at, 'yyyy-MM') AS created_month,
  model_version,
  prediction,
  age,
  bmi,
  glucose,
  blood_pressure,
  insulin,
  pregnancies,
  family_history,
  {{ category('physical_activity', ['low', 'moderate', 'high']) }} AS physical_activity,
  {{ age_band('age') }} AS age_band,
  CASE
    WHEN bmi IS NULL THEN 'unknown'
    WHEN bmi < 18.5 THEN 'underweight'
    WHEN bmi < 25 THEN 'normal'
    WHEN bmi < 30 THEN 'overweight'
    ELSE 'obese'
  END AS bmi_category,
  CASE
    WHEN glucose IS NULL THEN 'unknown'
    WHEN glucose < 100 THEN 'normal'
    WHEN glucose < 126 THEN 'prediabetes'
    ELSE 'diabetes_range'
  END AS glucose_band,
  {{ flag('blood_pressure', 'blood_pressure >= 90') }} AS high_blood_pressure,
  {{ label('verified_outcome') }} AS label
FROM {{ ref('stg_predictions') }}
WHERE quarantine_reason IS NULL
  AND record_type = 'diabetes'
