{#- A generic test may also live in macros/. -#}
{% test at_most(model, column_name, limit) %}
SELECT * FROM {{ model }} WHERE {{ column_name }} > {{ limit }}
{% endtest %}
