SELECT id AS customer_id, name, UPPER(TRIM(country)) AS country_code
FROM {{ source('ecom', 'raw_customers') }}
