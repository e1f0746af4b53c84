{{ config(materialized='table', partition_by=['created_month'], repartition=4) }}
-- Liver-disease screening features, one row per usable record. label: 1 positive, 0 negative, NULL not verified yet.
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
  total_bilirubin,
  alkaline_phosphatase,
  alt,
  ast,
  albumin,
  {{ category('alcohol_use', ['none', 'moderate', 'heavy']) }} AS alcohol_use,
  {{ age_band('age') }} AS age_band,
  -- De Ritis ratio: AST/ALT above 2 points to alcoholic liver disease.
  CASE WHEN alt > 0 THEN ROUND(ast / alt, 3) END AS ast_alt_ratio,
  {{ flag('total_bilirubin', 'total_bilirubin > 1.2') }} AS elevated_bilirubin,
  {{ flag('albumin', 'albumin < 3.5') }} AS low_albumin,
  {{ label('verified_outcome') }} AS label
FROM {{ ref('stg_predictions') }}
WHERE quarantine_reason IS NULL
  AND record_type = 'liver'
