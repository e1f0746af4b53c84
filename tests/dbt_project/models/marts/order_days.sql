{{ dbt_utils.date_spine('day', "'2026-11-01'", "'2026-11-04'") }}
