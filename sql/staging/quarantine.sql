{{ config(materialized='table', partition_by=['quarantine_reason'], repartition=1) }}
-- Rows that cannot be used, with the reason, kept for inspection instead of silently dropped.
-- Reasons, checked in this order: malformed_json, unknown_record_type, impossible_value, duplicate, unknown_outcome.
SELECT
  record_id,
  user_id,
  record_type,
  data,
  created_at,
  quarantine_reason
FROM {{ ref('stg_predictions') }}
WHERE quarantine_reason IS NOT NULL
