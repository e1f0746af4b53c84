SELECT COUNT(*) AS orders, SUM(amount) AS amount FROM {{ ref('risky_orders') }}
