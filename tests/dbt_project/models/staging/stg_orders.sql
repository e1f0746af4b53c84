SELECT
  id AS order_id,
  customer_id,
  amount,
  LOWER(status) AS status,
  created_at,
  {{ dbt_utils.generate_surrogate_key(['id', 'customer_id']) }} AS order_key
FROM {{ source('ecom', 'raw_orders') }}
WHERE amount >= {{ var('min_order_amount') }} AND created_at >= {{ var('first_order_day') | sql }}
