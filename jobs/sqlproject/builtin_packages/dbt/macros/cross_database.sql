{#-
  dbt's cross-database macros, written for Spark SQL. dbt ships them in its adapters; real packages call them as
  dbt.hash(...) or without the prefix (type_string()), and both work here.
-#}

{% macro type_string() %}string{% endmacro %}
{% macro type_timestamp() %}timestamp{% endmacro %}
{% macro type_int() %}int{% endmacro %}
{% macro type_bigint() %}bigint{% endmacro %}
{% macro type_float() %}double{% endmacro %}
{% macro type_numeric() %}decimal(28,6){% endmacro %}
{% macro type_boolean() %}boolean{% endmacro %}

{% macro hash(field) %}md5(cast({{ field }} as string)){% endmacro %}

{% macro concat(fields) %}concat({{ fields | join(', ') }}){% endmacro %}

{% macro cast(field, type) %}cast({{ field }} as {{ type }}){% endmacro %}

{#- Spark runs in ANSI mode: a cast that fails is an error, so the safe one is try_cast. -#}
{% macro safe_cast(field, type) %}try_cast({{ field }} as {{ type }}){% endmacro %}

{% macro cast_bool_to_text(field) %}cast({{ field }} as string){% endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{#- dbt's datediff(a, b, part) is b - a in whole parts. -#}
{% macro datediff(first_date, second_date, datepart) -%}
timestampdiff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro %}

{% macro date_trunc(datepart, date) %}date_trunc('{{ datepart }}', {{ date }}){% endmacro %}

{% macro last_day(date, datepart) -%}
{%- if datepart | lower == 'month' -%}
last_day({{ date }})
{%- else -%}
cast({{ dateadd('day', '-1', dateadd(datepart, '1', date_trunc(datepart, date))) }} as date)
{%- endif -%}
{%- endmacro %}

{% macro current_timestamp() %}current_timestamp(){% endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) -%}
split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}

{% macro escape_single_quotes(expression) %}{{ expression | replace("\\", "\\\\") | replace("'", "\\'") }}{% endmacro %}

{% macro string_literal(value) %}'{{ escape_single_quotes(value) }}'{% endmacro %}

{% macro length(expression) %}length({{ expression }}){% endmacro %}

{% macro replace(field, old_chars, new_chars) %}replace({{ field }}, {{ old_chars }}, {{ new_chars }}){% endmacro %}

{% macro right(string_text, length_expression) %}right({{ string_text }}, {{ length_expression }}){% endmacro %}

{% macro position(substring_text, string_text) %}position({{ substring_text }}, {{ string_text }}){% endmacro %}

{% macro any_value(expression) %}any_value({{ expression }}){% endmacro %}

{% macro bool_or(expression) %}bool_or({{ expression }}){% endmacro %}

{#- Spark's collect_list keeps no order: an order is refused rather than ignored. -#}
{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
{%- if order_by_clause or limit_num -%}
{{ exceptions.raise_compiler_error("listagg(): order_by_clause and limit_num are not supported on Spark; aggregate an ordered array instead (array_join(transform(array_sort(collect_list(struct(key, value))), x -> x.value), ', ')).") }}
{%- endif -%}
array_join(collect_list({{ measure }}), {{ delimiter_text }})
{%- endmacro %}

{% macro array_construct(inputs=[], data_type=none) %}array({{ inputs | join(', ') }}){% endmacro %}

{% macro except() %}except{% endmacro %}
{% macro intersect() %}intersect{% endmacro %}

{% macro date(year, month, day) %}make_date({{ year }}, {{ month }}, {{ day }}){% endmacro %}
