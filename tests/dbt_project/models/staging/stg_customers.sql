SELECT id AS customer_id, name, {{ shop_utils.clean_code('country') }} AS country_code
FROM {{ source('ecom', 'raw_customers') }}
