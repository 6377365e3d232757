-- The landed contacts (people at a customer whom Chaser reminds), trimmed, one row per contact_id, with whether the ledger deleted them.
with source_contacts as not materialized (
    select * from landing.contacts
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
    where table_name = 'contacts'
    group by key
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(contact_id), '') as contact_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(trim(email), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(mobile), '') as mobile,
        is_archived::boolean as is_archived,
        updated_at::timestamp as updated_at,
        deleted_spellings.spelling_deleted_at
    from source_contacts
    left join deleted_spellings
        on deleted_spellings.deleted_key = source_contacts.contact_id
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            -- a spelling the warehouse no longer has is no duplicate of a live one
            when contact_id is not null then coalesce(
                nullif(count(*) filter (where spelling_deleted_at is null)
                    over (partition by contact_id), 0),
                count(*) over (partition by contact_id)
            )
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by contact_id
            order by spelling_deleted_at is not null, updated_at desc, customer_id, first_name, last_name, email, phone, mobile,
                is_archived
        ) as key_rank
    from cleaned
),

final as (
    select
        ranked.contact_id,
        ranked.customer_id,
        ranked.first_name,
        ranked.last_name,
        ranked.email,
        ranked.phone,
        ranked.mobile,
        ranked.is_archived,
        ranked.updated_at,
        ranked.duplicate_row_count,
        -- deleted when every spelling of the key went (a live one would have won)
        ranked.contact_id is not null and ranked.spelling_deleted_at is not null as is_deleted,
        case when ranked.contact_id is not null then ranked.spelling_deleted_at end as deleted_at
    from ranked
    -- a row without a key cannot be de-duplicated: every one is kept (and held back as
    -- missing_key), so none disappears unreported
    where ranked.key_rank = 1 or ranked.contact_id is null
)

select * from final
