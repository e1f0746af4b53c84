{{ config(materialized='view', tags=['finance']) }}
SELECT order_id, customer_id, amount, status FROM {{ ref('stg_orders') }}
