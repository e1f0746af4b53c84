-- Orders with the promotions running when they were placed: the seed's times have single-digit hours (4:30:21),
-- so compared as text, WELCOME (from 4:30) would seem to start after a 10:00 order.
SELECT o.order_id, p.code
FROM {{ ref('stg_orders') }} o
JOIN {{ ref('promotions') }} p
  ON o.created_at >= p.starts_at AND (p.ends_at IS NULL OR o.created_at < p.ends_at)
