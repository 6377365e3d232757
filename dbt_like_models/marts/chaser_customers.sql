-- The customers Chaser holds, one row per customer, in the Chaser payload's shape.
with customers as not materialized (
    select * from int_customers
),

sendable as (
    select * from customers
    -- a held-back customer is never sent (chaser_rejections says why)
    where hold_reason_code is null
),

final as (
    select
        customer_id as external_id,
        company_name,
        contact_first_name,
        contact_last_name,
        contact_email_address,
        phone_number,
        mobile_number,
        customer_status as status,
        -- one Billing address, built from the address columns, when any of them is set
        case
            when coalesce(address_line1, address_line2, city, region, postal_code, country)
                is not null
                then [
                    {
                        'address_line1': address_line1,
                        'address_line2': address_line2,
                        'city': city,
                        'region': region,
                        'postal_code': postal_code,
                        'country': country,
                        'address_type': 'Billing'
                    }
                ]
        end as addresses
    from sendable
)

select * from final
