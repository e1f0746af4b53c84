{{ config(materialized='ephemeral') }}
-- Inlined where it is read, as dbt's ephemeral models are.
SELECT order_id, customer_id, status, amount FROM {{ ref('stg_orders') }}
