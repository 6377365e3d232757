-- The landed uses of credit (against an invoice, or refunded in cash), trimmed, one row per allocation_id.
with source_credit_allocations as (
    select * from landing.credit_allocations
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(allocation_id), '') as allocation_id,
        nullif(trim(credit_note_id), '') as credit_note_id,
        -- NULL for a cash refund of the credit
        nullif(trim(invoice_id), '') as invoice_id,
        amount::decimal(18, 2) as allocation_amount,
        allocated_at::timestamp as allocated_at,
        is_reversed::boolean as is_reversed,
        updated_at::timestamp as updated_at
    from source_credit_allocations
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            when allocation_id is not null then count(*) over (partition by allocation_id)
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by allocation_id
            order by updated_at desc, credit_note_id, invoice_id, allocation_amount,
                allocated_at, is_reversed
        ) as key_rank
    from cleaned
),

final as (
    select
        allocation_id,
        credit_note_id,
        invoice_id,
        allocation_amount,
        allocated_at,
        is_reversed,
        updated_at,
        duplicate_row_count
    from ranked
    -- money is never dropped unseen: a row without a key cannot be de-duplicated, so every one
    -- is kept (and reported as missing_key), not only one of them
    where key_rank = 1 or allocation_id is null
)

select * from final
