{{ config(materialized='view', tags=['finance']) }}
SELECT {{ dbt_utils.star(from=ref('stg_orders'), except=['created_at', 'order_key']) }}
FROM {{ ref('stg_orders') }}
