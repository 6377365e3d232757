-- The landed customers, trimmed, one row per customer_id, with whether the ledger deleted it.
with source_customers as not materialized (
    select * from landing.customers
),

source_deleted_keys as not materialized (
    select * from landing.deleted_keys
),

deleted_spellings as (
    -- a key gone from the warehouse keeps its last landed row; deleted_keys says when it went
    -- (by the key as landed: a key respelled, 'C-1 ' fixed to 'C-1', leaves only its old
    -- spelling gone)
    select
        key as deleted_key,
        max(deleted_at) as spelling_deleted_at
    from source_deleted_keys
    where table_name = 'customers'
    group by key
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
        updated_at::timestamp as updated_at,
        deleted_spellings.spelling_deleted_at
    from source_customers
    left join deleted_spellings
        on deleted_spellings.deleted_key = source_customers.customer_id
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            -- a spelling the warehouse no longer has is no duplicate of a live one
            when customer_id is not null then coalesce(
                nullif(count(*) filter (where spelling_deleted_at is null)
                    over (partition by customer_id), 0),
                count(*) over (partition by customer_id)
            )
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by customer_id
            order by spelling_deleted_at is not null, updated_at desc, company_name, contact_first_name, contact_last_name,
                email, phone, mobile, address_line1, address_line2, city, region, postal_code,
                country, is_archived
        ) as key_rank
    from cleaned
),

final as (
    select
        ranked.customer_id,
        ranked.company_name,
        ranked.contact_first_name,
        ranked.contact_last_name,
        ranked.email,
        ranked.phone,
        ranked.mobile,
        ranked.address_line1,
        ranked.address_line2,
        ranked.city,
        ranked.region,
        ranked.postal_code,
        ranked.country,
        ranked.is_archived,
        ranked.updated_at,
        ranked.duplicate_row_count,
        -- deleted when every spelling of the key went (a live one would have won)
        ranked.customer_id is not null and ranked.spelling_deleted_at is not null as is_deleted,
        case when ranked.customer_id is not null then ranked.spelling_deleted_at end as deleted_at
    from ranked
    -- a row without a key cannot be de-duplicated: every one is kept (and held back as
    -- missing_key), so none disappears unreported
    where ranked.key_rank = 1 or ranked.customer_id is null
)

select * from final
