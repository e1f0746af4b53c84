SELECT
  c.customer_id,
  c.name,
  cc.country_name,
  COUNT(o.order_id) AS orders,
  COALESCE(SUM(o.amount), 0) AS lifetime_value
FROM {{ ref('stg_customers') }} c
LEFT JOIN {{ ref('stg_orders') }} o ON o.customer_id = c.customer_id
LEFT JOIN {{ ref('country_codes') }} cc ON cc.code = c.country_code
GROUP BY c.customer_id, c.name, cc.country_name
