-- An analysis: compiled by dbt, never built. It reads a model that does not exist, and is never a model here.
select date_trunc('month', created_at) as month, count(*) from {{ ref('orders_history') }} group by 1
