{#- Feature-engineering helpers shared by the feature models. -#}

{#- A category with its known values; anything else (typos, 'other', 'n/a', missing) becomes 'unknown'. -#}
{% macro category(expression, values) -%}
CASE WHEN REPLACE(REPLACE({{ expression }}, '-', '_'), ' ', '_') IN ({% for v in values %}'{{ v }}'{{ ', ' if not loop.last }}{% endfor %})
  THEN REPLACE(REPLACE({{ expression }}, '-', '_'), ' ', '_') ELSE 'unknown' END
{%- endmacro %}

{#- 1 when the condition holds, 0 when it does not, NULL when its input is missing (imputed later). -#}
{% macro flag(input, condition) -%}
CASE WHEN {{ input }} IS NULL THEN NULL WHEN {{ condition }} THEN 1 ELSE 0 END
{%- endmacro %}

{% macro age_band(age='age') -%}
CASE
  WHEN {{ age }} IS NULL THEN 'unknown'
  WHEN {{ age }} < 30 THEN 'under_30'
  WHEN {{ age }} < 45 THEN '30-44'
  WHEN {{ age }} < 60 THEN '45-59'
  WHEN {{ age }} < 75 THEN '60-74'
  ELSE '75+'
END
{%- endmacro %}

{#- The label is the verified outcome only, never the model's own prediction. -#}
{% macro label(outcome='verified_outcome') -%}
CASE LOWER(TRIM({{ outcome }})) WHEN 'positive' THEN 1 WHEN 'negative' THEN 0 END
{%- endmacro %}
