{#-
  Read the keys of a record's JSON `data` (what the backend received), typed and tolerant of how clients send it.
  get_json_object returns a value's text for strings and numbers alike, so "42.5" and 42.5 both become 42.5;
  a missing key, a JSON null or text that is no number become NULL (imputed later), never an error.

  Extract with bare json_field() calls in one SELECT and type the results in the next: Spark then parses each
  record's JSON once for all keys (spark.sql.optimizer.getJsonObjectSharedParsing.enabled); a get_json_object
  wrapped in another function is parsed on its own.
-#}

{% macro json_field(key, column='data') -%}
get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{#- The whole document re-serialised; NULL when `column` is not valid JSON (cut short, form-encoded, empty). -#}
{% macro json_root(column='data') -%}
get_json_object({{ column }}, '$')
{%- endmacro %}

{#- TRUE when the document is a JSON object (not an array, a string or a number). -#}
{% macro is_json_object(root, column='data') -%}
({{ root }} IS NOT NULL AND LEFT(LTRIM({{ column }}), 1) = '{')
{%- endmacro %}

{% macro to_double(text) -%}
TRY_CAST(TRIM({{ text }}) AS DOUBLE)
{%- endmacro %}

{% macro to_category(text) -%}
NULLIF(LOWER(TRIM({{ text }})), '')
{%- endmacro %}

{% macro to_flag(text) -%}
CASE LOWER(TRIM({{ text }}))
  WHEN 'true' THEN 1 WHEN 'yes' THEN 1 WHEN '1' THEN 1
  WHEN 'false' THEN 0 WHEN 'no' THEN 0 WHEN '0' THEN 0
END
{%- endmacro %}

{#- One-step forms, for a model that reads a key or two of its own. -#}
{% macro json_double(key, column='data') -%}
{{ to_double(json_field(key, column)) }}
{%- endmacro %}

{% macro json_text(key, column='data') -%}
{{ to_category(json_field(key, column)) }}
{%- endmacro %}

{% macro json_flag(key, column='data') -%}
{{ to_flag(json_field(key, column)) }}
{%- endmacro %}
