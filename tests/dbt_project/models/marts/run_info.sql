{{ config(materialized='view') }}
{%- if execute %}{{ log('run_info runs for target ' ~ target.name, info=True) }}{% endif %}
SELECT
  '{{ target.name }}' AS target_name,
  '{{ target.schema }}' AS target_schema,
  '{{ env_var('SHOP_REGION', 'eu') }}' AS region,
  '{{ this }}' AS model_view,
  '{{ this.identifier }}' AS model_identifier,
  '{{ invocation_id }}' AS invocation_id,
  TIMESTAMP '{{ run_started_at.strftime('%Y-%m-%d %H:%M:%S') }}' AS run_started_at,
  {{ modules.datetime.date(2026, 11, 1).year }} AS first_year,
  {% if target.name == 'dev' %}TRUE{% else %}FALSE{% endif %} AS is_dev
