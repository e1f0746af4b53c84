{#-
  The dbt_utils macros analysts use most, written for Spark SQL with dbt_utils' names, arguments and results.
  star and union_relations need their inputs' columns: rendered without Spark (compile, ls) star gives * and
  union_relations nothing, as in dbt's parse; when the model runs they are rendered again with the real columns.
-#}

{%- macro generate_surrogate_key(field_list) -%}
{%- if var('surrogate_key_treat_nulls_as_empty_strings', False) -%}
  {%- set default_null_value = "" -%}
{%- else -%}
  {%- set default_null_value = '_dbt_utils_surrogate_key_null_' -%}
{%- endif -%}
{%- set fields = [] -%}
{%- for field in field_list -%}
  {%- do fields.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '" ~ default_null_value ~ "')") -%}
  {%- if not loop.last -%}{%- do fields.append("'-'") -%}{%- endif -%}
{%- endfor -%}
{{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro -%}

{#- dbt_utils before 1.0: a NULL is an empty string, and the fields may be given one by one. -#}
{%- macro surrogate_key(field_list) -%}
{%- set names = [field_list] + (varargs | list) if field_list is string else field_list -%}
{%- set fields = [] -%}
{%- for field in names -%}
  {%- do fields.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '')") -%}
  {%- if not loop.last -%}{%- do fields.append("'-'") -%}{%- endif -%}
{%- endfor -%}
{{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro -%}

{#- One row per period from start_date (included) to end_date (left out), in a column date_<datepart>: dates for
    day to year, timestamps for hour to second. -#}
{%- macro date_spine(datepart, start_date, end_date) -%}
{%- set part = datepart | lower -%}
{%- set steps = {
    'day': 'INTERVAL 1 DAY', 'week': 'INTERVAL 7 DAYS', 'month': 'INTERVAL 1 MONTH',
    'quarter': 'INTERVAL 3 MONTHS', 'year': 'INTERVAL 1 YEAR', 'hour': 'INTERVAL 1 HOUR',
    'minute': 'INTERVAL 1 MINUTE', 'second': 'INTERVAL 1 SECOND'} -%}
{%- if part not in steps -%}
  {{ exceptions.raise_compiler_error("dbt_utils.date_spine(): datepart must be one of " ~ (steps.keys() | join(', ')) ~ ". Got '" ~ datepart ~ "'.") }}
{%- endif -%}
{%- set type = 'date' if part in ('day', 'week', 'month', 'quarter', 'year') else 'timestamp' -%}
select date_{{ part }}
from (
  select explode(sequence(
    cast({{ start_date }} as {{ type }}),
    greatest(cast({{ start_date }} as {{ type }}), cast({{ end_date }} as {{ type }})),
    {{ steps[part] }}
  )) as date_{{ part }}
)
where date_{{ part }} < cast({{ end_date }} as {{ type }})
{%- endmacro -%}

{%- macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True) -%}
{%- if not execute -%}
  {{ return('*') }}
{%- endif -%}
{%- set excluded = except | map('lower') | list -%}
{%- set names = [] -%}
{%- for column in adapter.get_columns_in_relation(from) -%}
  {%- if column.name | lower not in excluded -%}{%- do names.append(column.name) -%}{%- endif -%}
{%- endfor -%}
{%- if not names -%}
  {{ exceptions.raise_compiler_error("dbt_utils.star(): " ~ from ~ " has no columns left once " ~ (except | join(', ')) ~ " are left out.") }}
{%- endif -%}
{%- for name in names -%}
  {%- if relation_alias %}{{ relation_alias }}.{% endif -%}
  {%- if quote_identifiers -%}
    {{ adapter.quote(name) }}{% if prefix != '' or suffix != '' %} as {{ adapter.quote(prefix ~ name ~ suffix) }}{% endif %}
  {%- else -%}
    {{ name }}{% if prefix != '' or suffix != '' %} as {{ prefix ~ name ~ suffix }}{% endif %}
  {%- endif -%}
  {%- if not loop.last %},{{ '\n  ' }}{% endif -%}
{%- endfor -%}
{%- endmacro -%}

{%- macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) -%}
{%- if not execute -%}
  {{ return('') }}
{%- endif -%}
{%- if include and exclude -%}
  {{ exceptions.raise_compiler_error("dbt_utils.union_relations(): give include or exclude, not both.") }}
{%- endif -%}
{%- set included = include | map('lower') | list -%}
{%- set excluded = exclude | map('lower') | list -%}
{%- set superset = {} -%}
{%- set present = {} -%}
{%- for relation in relations -%}
  {%- set names = [] -%}
  {%- for column in adapter.get_columns_in_relation(relation) -%}
    {%- set name = column.name | lower -%}
    {%- if (not included or name in included) and name not in excluded -%}
      {%- if name not in superset -%}{%- do superset.update({name: column}) -%}{%- endif -%}
      {%- do names.append(name) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do present.update({relation | string: names}) -%}
{%- endfor -%}
{%- for relation in relations %}
(
  select
    {%- if source_column_name is not none %}
    cast('{{ relation }}' as string) as {{ adapter.quote(source_column_name) }},
    {%- endif %}
    {%- for name, column in superset.items() %}
    {%- set type = (column_override or {}).get(name, column.data_type) %}
    {% if name in present[relation | string] %}cast({{ adapter.quote(name) }} as {{ type }}){% else %}cast(null as {{ type }}){% endif %} as {{ adapter.quote(name) }}{{ ',' if not loop.last }}
    {%- endfor %}
  from {{ relation }}
  {%- if where %}
  where {{ where }}
  {%- endif %}
)
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
{%- endmacro -%}

{%- macro pivot(column, values, alias=True, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=True, distinct=False) -%}
{%- for value in values %}
  {{ agg }}({% if distinct %}distinct {% endif %}case when {{ column }} {{ cmp }} '{{ dbt.escape_single_quotes(value) }}' then {{ then_value }} else {{ else_value }} end)
  {%- if alias %} as {{ adapter.quote(prefix ~ value ~ suffix) if quote_identifiers else dbt_utils.slugify(prefix ~ value ~ suffix) }}{% endif %}
  {%- if not loop.last %},{% endif %}
{%- endfor %}
{%- endmacro -%}

{%- macro slugify(string) -%}
{%- set string = modules.re.sub('[ -]+', '_', string | lower) -%}
{%- set string = modules.re.sub('[^a-z0-9_]+', '', string) -%}
{%- if string[:1] in '0123456789' and string -%}{%- set string = '_' ~ string -%}{%- endif -%}
{{ return(string) }}
{%- endmacro -%}

{%- macro group_by(n) -%}
group by {% for i in range(1, n + 1) %}{{ i }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro -%}

{%- macro safe_divide(numerator, denominator) -%}
( {{ numerator }} ) / nullif( ( {{ denominator }} ), 0)
{%- endmacro -%}

{%- macro safe_add(field_list) -%}
{%- set fields = [] -%}
{%- for field in field_list -%}{%- do fields.append("coalesce(" ~ field ~ ", 0)") -%}{%- endfor -%}
{{ fields | join(' +\n  ') }}
{%- endmacro -%}

{%- macro safe_subtract(field_list) -%}
{%- set fields = [] -%}
{%- for field in field_list -%}{%- do fields.append("coalesce(" ~ field ~ ", 0)") -%}{%- endfor -%}
{{ fields | join(' -\n  ') }}
{%- endmacro -%}

{%- macro generate_series(upper_bound) -%}
select explode(sequence(1, {{ upper_bound }})) as generated_number
{%- endmacro -%}

{%- macro deduplicate(relation, partition_by, order_by) -%}
select * except (_dbt_utils_row_number) from (
  select *, row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as _dbt_utils_row_number
  from {{ relation }}
)
where _dbt_utils_row_number = 1
{%- endmacro -%}
