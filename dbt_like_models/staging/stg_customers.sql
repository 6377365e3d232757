-- The landed customers, trimmed, one row per customer_id.
with source_customers as (
    select * from landing.customers
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(company_name), '') as company_name,
        nullif(trim(contact_first_name), '') as contact_first_name,
        nullif(trim(contact_last_name), '') as contact_last_name,
        nullif(trim(email), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(mobile), '') as mobile,
        nullif(trim(address_line1), '') as address_line1,
        nullif(trim(address_line2), '') as address_line2,
        nullif(trim(city), '') as city,
        nullif(trim(region), '') as region,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(country), '') as country,
        is_archived::boolean as is_archived,
        updated_at::timestamp as updated_at
    from source_customers
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections
        count(*) over (partition by customer_id) as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by customer_id
            order by updated_at desc, company_name, contact_first_name, contact_last_name,
                email, phone, mobile, address_line1, address_line2, city, region, postal_code,
                country, is_archived
        ) as key_rank
    from cleaned
),

final as (
    select
        customer_id,
        company_name,
        contact_first_name,
        contact_last_name,
        email,
        phone,
        mobile,
        address_line1,
        address_line2,
        city,
        region,
        postal_code,
        country,
        is_archived,
        updated_at,
        duplicate_row_count
    from ranked
    where key_rank = 1
)

select * from final
