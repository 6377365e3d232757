-- The landed uses of credit or of cash received on account (against an invoice, or refunded), trimmed, one row per allocation_id, with whether the ledger deleted it.
with source_credit_allocations as not materialized (
    select * from landing.credit_allocations
),

source_deleted_keys as not materialized (
    select * from landing.deleted_keys
),

deleted_spellings as (
    -- a key gone from the warehouse keeps its last landed row; deleted_keys says when it went
    -- (by the key as landed: a key respelled, 'A-1 ' fixed to 'A-1', leaves only its old
    -- spelling gone)
    select
        key as deleted_key,
        max(deleted_at) as spelling_deleted_at
    from source_deleted_keys
    where table_name = 'credit_allocations'
    group by key
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(allocation_id), '') as allocation_id,
        nullif(trim(credit_note_id), '') as credit_note_id,
        -- optional column: the payment on account (or overpaying payment) whose unapplied cash
        -- is used, in place of a credit note
        nullif(trim(payment_id), '') as payment_id,
        -- NULL for a cash refund of the credit
        nullif(trim(invoice_id), '') as invoice_id,
        amount::decimal(18, 2) as allocation_amount,
        allocated_at::timestamp as allocated_at,
        is_reversed::boolean as is_reversed,
        updated_at::timestamp as updated_at,
        deleted_spellings.spelling_deleted_at
    from source_credit_allocations
    left join deleted_spellings
        on deleted_spellings.deleted_key = source_credit_allocations.allocation_id
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            -- a spelling the warehouse no longer has is no duplicate of a live one
            when allocation_id is not null then coalesce(
                nullif(count(*) filter (where spelling_deleted_at is null)
                    over (partition by allocation_id), 0),
                count(*) over (partition by allocation_id)
            )
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by allocation_id
            order by spelling_deleted_at is not null, updated_at desc, credit_note_id, payment_id, invoice_id, allocation_amount,
                allocated_at, is_reversed
        ) as key_rank
    from cleaned
),

final as (
    select
        ranked.allocation_id,
        ranked.credit_note_id,
        ranked.payment_id,
        ranked.invoice_id,
        ranked.allocation_amount,
        ranked.allocated_at,
        ranked.is_reversed,
        ranked.updated_at,
        ranked.duplicate_row_count,
        -- deleted when every spelling of the key went (a live one would have won)
        ranked.allocation_id is not null and ranked.spelling_deleted_at is not null as is_deleted,
        case when ranked.allocation_id is not null then ranked.spelling_deleted_at end as deleted_at
    from ranked
    -- money is never dropped unseen: a row without a key cannot be de-duplicated, so every one
    -- is kept (and reported as missing_key), not only one of them
    where ranked.key_rank = 1 or ranked.allocation_id is null
)

select * from final
