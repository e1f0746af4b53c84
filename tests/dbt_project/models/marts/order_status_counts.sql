-- One row per customer, a column per status: the package's list of statuses, pivoted by dbt_utils.
SELECT
  customer_id,
  {{ dbt_utils.pivot('status', shop_utils.order_statuses()) }}
FROM {{ ref('int_order_amounts') }}
GROUP BY customer_id
