{#-
  Read one key of a record's JSON `data` (what the backend received), typed and tolerant of how clients send it.
  get_json_object returns the value's text for strings and numbers alike, so "42.5" and 42.5 both become 42.5;
  a missing key, a JSON null or text that is no number become NULL (imputed later), never an error.
-#}

{% macro json_text(key, column='data') -%}
NULLIF(LOWER(TRIM(get_json_object({{ column }}, '$.{{ key }}'))), '')
{%- endmacro %}

{% macro json_double(key, column='data') -%}
TRY_CAST(TRIM(get_json_object({{ column }}, '$.{{ key }}')) AS DOUBLE)
{%- endmacro %}

{% macro json_flag(key, column='data') -%}
CASE LOWER(TRIM(get_json_object({{ column }}, '$.{{ key }}')))
  WHEN 'true' THEN 1 WHEN 'yes' THEN 1 WHEN '1' THEN 1
  WHEN 'false' THEN 0 WHEN 'no' THEN 0 WHEN '0' THEN 0
END
{%- endmacro %}

{#- TRUE when `column` holds a JSON object; truncated or form-encoded bodies (and JSON that is not an object) do not. -#}
{% macro is_json_object(column='data') -%}
(json_object_keys({{ column }}) IS NOT NULL)
{%- endmacro %}
