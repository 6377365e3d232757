-- The landed payments against invoices, trimmed, one row per payment_id.
with source_payments as (
    select * from landing.payments
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(payment_id), '') as payment_id,
        nullif(trim(invoice_id), '') as invoice_id,
        amount::decimal(18, 2) as payment_amount,
        paid_at::timestamp as paid_at,
        is_reversed::boolean as is_reversed,
        updated_at::timestamp as updated_at
    from source_payments
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            when payment_id is not null then count(*) over (partition by payment_id)
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by payment_id
            order by updated_at desc, invoice_id, payment_amount, paid_at, is_reversed
        ) as key_rank
    from cleaned
),

final as (
    select
        payment_id,
        invoice_id,
        payment_amount,
        paid_at,
        is_reversed,
        updated_at,
        duplicate_row_count
    from ranked
    -- money is never dropped unseen: a row without a key cannot be de-duplicated, so every one
    -- is kept (and reported as missing_key), not only one of them
    where key_rank = 1 or payment_id is null
)

select * from final
