{#-
  Read the keys of a record's JSON `data` (what the backend received), typed and tolerant of how clients send it.
  A value's text is kept for strings and numbers alike, so "42.5" and 42.5 both become 42.5; a missing key, a JSON
  null or text that is no number become NULL (imputed later), never an error.

  json_document() parses each record once for all the keys a model reads: from_json with every key as STRING keeps a
  number's text as written (as get_json_object does), and its corrupt-record column marks text that is not JSON.
  Read the keys as doc.<key> and type them with to_double/to_category/to_flag.
-#}

{% macro json_document(keys, column='data') -%}
from_json({{ column }}, '{% for key in keys %}`{{ key }}` STRING, {% endfor %}`_corrupt_record` STRING',
          map('columnNameOfCorruptRecord', '_corrupt_record'))
{%- endmacro %}

{#- TRUE when `column` holds a JSON object (not an array, a string, a number, or text cut short); `doc` is its
    json_document(). -#}
{% macro is_json_object(doc, column='data') -%}
({{ doc }} IS NOT NULL AND {{ doc }}._corrupt_record IS NULL AND LEFT(LTRIM({{ column }}), 1) = '{')
{%- endmacro %}

{#- One key of one document, for a model that reads a key or two of its own (each call parses the document). -#}
{% macro json_field(key, column='data') -%}
get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{#- A number, or NULL: text that is no number, and "NaN" or "Infinity" (no measurement; a model cannot train on
    it). The serving backend reads a request's value the same way (jobs/ml/json_inputs.py).
    x - x + x is x when x is finite and NaN when it is not, and NANVL turns NaN into NULL. Written so, the cast is
    one expression's common subexpression, computed once; CASE WHEN ABS(x) < 'Infinity' THEN x END cast every value
    twice, and the staging model's generated code grew past what the JVM compiles (CHANGELOG.md, 2026-12-07). -#}
{% macro to_double(text) -%}
{%- set number = 'TRY_CAST(TRIM(' ~ text ~ ') AS DOUBLE)' -%}
NANVL({{ number }} - {{ number }} + {{ number }}, CAST(NULL AS DOUBLE))
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
