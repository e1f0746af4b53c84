{#-
  later_duplicates(relation, columns): the ids of the rows of `relation` that repeat an earlier row (lower id) on
  every one of `columns` (NULLs equal, as in PARTITION BY), i.e. ROW_NUMBER() OVER (PARTITION BY columns ORDER BY
  id) > 1, without moving the wide rows: a 64-bit hash of the columns finds the few groups that can hold repeats
  (a shuffle of 8 bytes a row), and only the rows of those groups are compared on the columns themselves.
  The result is small (the repeats only): join it with a BROADCAST hint, so the wide rows are never shuffled.
-#}
{% macro later_duplicates(relation, columns, id='id') -%}
SELECT {{ id }} FROM (
  SELECT {{ id }}, ROW_NUMBER() OVER (PARTITION BY {{ columns | join(', ') }} ORDER BY {{ id }}) AS occurrence
  FROM {{ relation }}
  WHERE xxhash64({{ columns | join(', ') }}) IN (
    SELECT xxhash64({{ columns | join(', ') }}) FROM {{ relation }} GROUP BY 1 HAVING COUNT(*) > 1
  )
)
WHERE occurrence > 1
{%- endmacro %}
