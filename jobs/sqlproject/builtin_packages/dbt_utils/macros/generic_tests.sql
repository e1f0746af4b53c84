{#-
  dbt_utils' generic tests, written for Spark SQL: each selects the rows (or groups) that fail. Use them in a
  property file as dbt_utils.<name>, with dbt_utils' arguments.
-#}

{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}
{%- set columns = [] -%}
{%- for column in combination_of_columns -%}
  {%- do columns.append(adapter.quote(column) if quote_columns else column) -%}
{%- endfor -%}
select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({% if column_name is not none %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
select *
from {{ model }}
where 1 = 2
{%- if min_value is not none %}
  or not {{ column_name }} >{{ '=' if inclusive }} {{ min_value }}
{%- endif %}
{%- if max_value is not none %}
  or not {{ column_name }} <{{ '=' if inclusive }} {{ max_value }}
{%- endif %}
{% endtest %}

{% test not_null_proportion(model, column_name, at_least, at_most=1.0, group_by_columns=[]) %}
{%- set groups = group_by_columns | join(', ') -%}
select *
from (
  select {% if groups %}{{ groups }}, {% endif %}sum(case when {{ column_name }} is null then 0 else 1 end) / cast(count(*) as double) as not_null_proportion
  from {{ model }}
  {% if groups %}group by {{ groups }}{% endif %}
)
where not_null_proportion < {{ at_least }} or not_null_proportion > {{ at_most }}
{% endtest %}

{% test at_least_one(model, column_name, group_by_columns=[]) %}
{%- set groups = group_by_columns | join(', ') -%}
select {% if groups %}{{ groups }}, {% endif %}count({{ column_name }}) as filler_column
from {{ model }}
{% if groups %}group by {{ groups }}{% endif %}
having count({{ column_name }}) = 0
{% endtest %}

{#- Measured from the run's time (run_started_at: the data interval's end), not the clock's, so a re-run of a date
    gives the same result. -#}
{% test recency(model, field, datepart, interval, ignore_time_component=False, group_by_columns=[]) %}
{%- set groups = group_by_columns | join(', ') -%}
{%- set now = "timestamp '" ~ run_started_at.isoformat() ~ "'" -%}
{%- set threshold = dbt.dateadd(datepart, -interval, now) -%}
{%- if ignore_time_component -%}{%- set threshold = "cast(" ~ threshold ~ " as date)" -%}{%- endif -%}
select *
from (
  select {% if groups %}{{ groups }}, {% endif %}max({% if ignore_time_component %}cast({{ field }} as date){% else %}{{ field }}{% endif %}) as most_recent, {{ threshold }} as threshold
  from {{ model }}
  {% if groups %}group by {{ groups }}{% endif %}
)
where most_recent < threshold or most_recent is null
{% endtest %}

{% test not_constant(model, column_name, group_by_columns=[]) %}
{%- set groups = group_by_columns | join(', ') -%}
select {% if groups %}{{ groups }}, {% endif %}count(distinct {{ column_name }}) as filler_column
from {{ model }}
{% if groups %}group by {{ groups }}{% endif %}
having count(distinct {{ column_name }}) = 1
{% endtest %}

{% test not_empty_string(model, column_name, trim_whitespace=true) %}
select *
from {{ model }}
where {% if trim_whitespace %}trim({{ column_name }}){% else %}{{ column_name }}{% endif %} = ''
{% endtest %}

{% test not_accepted_values(model, column_name, values, quote=true) %}
select *
from {{ model }}
where {{ column_name }} in ({% for value in values %}{% if quote %}'{{ dbt.escape_single_quotes(value) }}'{% else %}{{ value }}{% endif %}{{ ', ' if not loop.last }}{% endfor %})
{% endtest %}

{% test equal_rowcount(model, compare_model) %}
select *
from (select count(*) as model_rows from {{ model }})
cross join (select count(*) as compare_rows from {{ compare_model }})
where model_rows != compare_rows
{% endtest %}

{% test relationships_where(model, column_name, to, field, from_condition='1=1', to_condition='1=1') %}
select child.*
from (select * from {{ model }} where {{ column_name }} is not null and {{ from_condition }}) child
left anti join (select * from {{ to }} where {{ to_condition }}) parent
  on child.{{ column_name }} = parent.{{ field }}
{% endtest %}
