{#-
  later_duplicates(relation, columns, narrow=None): the ids of the rows of `relation` that repeat an earlier row
  (lower id) on every one of `columns` (NULLs equal, as in PARTITION BY), i.e. ROW_NUMBER() OVER (PARTITION BY
  columns ORDER BY id) > 1, without moving the wide rows: a 64-bit hash finds the few groups that can hold repeats
  (a shuffle of 8 bytes a row), and only the rows of those groups are compared on the columns themselves.
  `narrow`: some of `columns` that are cheap to read and nearly unique together (e.g. user and timestamp). The
  groups are then found on those alone, so the wide columns (a JSON document) are neither read nor hashed for
  every row. Rows equal on all `columns` are equal on `narrow`, so the
  result is the same.
  The hashes of the repeated groups are broadcast: each row is kept or dropped where it is read, and only the rows
  of those groups are shuffled to the window. Left to the planner (`IN (subquery)`), both sides are shuffled, every
  wide row included, and sorted for a merge join.
  The result is small (the repeats only): join it with a BROADCAST hint, so the wide rows are never shuffled.
  The repeated hashes are counted by a window, not `GROUP BY ... HAVING COUNT(*) > 1`: nearly every hash is unique,
  so the aggregate's map-side pass would build a hash table of every row and reduce nothing. Only the few repeated
  rows reach the DISTINCT, so what is broadcast is one hash per repeated group. The window sorts each group whole, so
  `narrow` must be nearly unique together (rows whose `narrow` columns are all NULL form one group).
-#}
{% macro later_duplicates(relation, columns, id='id', narrow=none) -%}
{%- set narrow = narrow or columns %}
SELECT {{ id }} FROM (
  SELECT /*+ BROADCAST(repeated_groups) */
    {{ id }}, ROW_NUMBER() OVER (PARTITION BY {{ columns | join(', ') }} ORDER BY {{ id }}) AS occurrence
  FROM {{ relation }}
  LEFT SEMI JOIN (
    SELECT DISTINCT group_hash FROM (
      SELECT xxhash64({{ narrow | join(', ') }}) AS group_hash,
             COUNT(*) OVER (PARTITION BY xxhash64({{ narrow | join(', ') }})) AS group_rows
      FROM {{ relation }}
    ) WHERE group_rows > 1
  ) AS repeated_groups ON xxhash64({{ narrow | join(', ') }}) = repeated_groups.group_hash
)
WHERE occurrence > 1
{%- endmacro %}
