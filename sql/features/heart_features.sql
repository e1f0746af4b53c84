{{ config(materialized='table', partition_by=['created_month'], repartition=4) }}
-- Heart-disease screening features, one row per usable record. label: 1 positive, 0 negative, NULL not verified yet.
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
  {{ category('sex', ['female', 'male']) }} AS sex,
  {{ category('chest_pain_type', ['typical', 'atypical', 'non_anginal', 'asymptomatic']) }} AS chest_pain_type,
  resting_bp,
  cholesterol,
  max_heart_rate,
  exercise_angina,
  smoker,
  {{ age_band('age') }} AS age_band,
  CASE
    WHEN cholesterol IS NULL THEN 'unknown'
    WHEN cholesterol < 200 THEN 'desirable'
    WHEN cholesterol < 240 THEN 'borderline'
    ELSE 'high'
  END AS cholesterol_band,
  {{ flag('resting_bp', 'resting_bp >= 140') }} AS hypertension,
  -- Share of the age-predicted maximum heart rate (220 - age) reached in the exercise test.
  CASE WHEN age > 0 AND age < 120 THEN ROUND(max_heart_rate / (220 - age), 3) END AS heart_rate_reserve,
  {{ label('verified_outcome') }} AS label
FROM {{ ref('stg_predictions') }}
WHERE quarantine_reason IS NULL
  AND record_type = 'heart'
