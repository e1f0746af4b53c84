SELECT id AS order_id, customer_id, amount, LOWER(status) AS status, created_at
FROM {{ source('ecom', 'raw_orders') }}
WHERE amount >= {{ var('min_order_amount') }}
