{#- A package's macros as real packages write them: dispatched, ending with return(), building lists with do. -#}
{% macro clean_code(column) -%}
  {{ return(adapter.dispatch('clean_code', 'shop_utils')(column)) }}
{%- endmacro %}

{% macro default__clean_code(column) -%}
  upper(trim({{ column }}))
{%- endmacro %}

{% macro order_statuses() -%}
  {%- set statuses = [] -%}
  {%- for status in ['placed', 'shipped', 'completed', 'returned'] -%}
    {%- do statuses.append(status) -%}
  {%- endfor -%}
  {{ return(statuses) }}
{%- endmacro %}
