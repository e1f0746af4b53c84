SELECT o.order_id
FROM {{ ref('stg_orders') }} o
LEFT ANTI JOIN {{ ref('stg_customers') }} c ON c.customer_id = o.customer_id
