-- The landed payments (against invoices, or received on account), trimmed, one row per payment_id, with whether the ledger deleted it.
with source_payments as not materialized (
    select * from landing.payments
),

source_deleted_keys as not materialized (
    select * from landing.deleted_keys
),

deleted_spellings as (
    -- a key gone from the warehouse keeps its last landed row; deleted_keys says when it went
    -- (by the key as landed: a key respelled, 'P-1 ' fixed to 'P-1', leaves only its old
    -- spelling gone)
    select
        key as deleted_key,
        max(deleted_at) as spelling_deleted_at
    from source_deleted_keys
    where table_name = 'payments'
    group by key
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(payment_id), '') as payment_id,
        -- NULL for money received on account
        nullif(trim(invoice_id), '') as invoice_id,
        amount::decimal(18, 2) as payment_amount,
        paid_at::timestamp as paid_at,
        is_reversed::boolean as is_reversed,
        updated_at::timestamp as updated_at,
        -- optional columns: whose money, in which currency, a payment on account is
        nullif(trim(customer_id), '') as customer_id,
        nullif(upper(trim(currency_code)), '') as currency_code,
        deleted_spellings.spelling_deleted_at
    from source_payments
    left join deleted_spellings
        on deleted_spellings.deleted_key = source_payments.payment_id
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            -- a spelling the warehouse no longer has is no duplicate of a live one
            when payment_id is not null then coalesce(
                nullif(count(*) filter (where spelling_deleted_at is null)
                    over (partition by payment_id), 0),
                count(*) over (partition by payment_id)
            )
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by payment_id
            order by spelling_deleted_at is not null, updated_at desc, invoice_id, payment_amount, paid_at, is_reversed,
                customer_id, currency_code
        ) as key_rank
    from cleaned
),

final as (
    select
        ranked.payment_id,
        ranked.invoice_id,
        ranked.payment_amount,
        ranked.paid_at,
        ranked.is_reversed,
        ranked.updated_at,
        ranked.customer_id,
        ranked.currency_code,
        ranked.duplicate_row_count,
        -- deleted when every spelling of the key went (a live one would have won)
        ranked.payment_id is not null and ranked.spelling_deleted_at is not null as is_deleted,
        case when ranked.payment_id is not null then ranked.spelling_deleted_at end as deleted_at
    from ranked
    -- money is never dropped unseen: a row without a key cannot be de-duplicated, so every one
    -- is kept (and reported as missing_key), not only one of them
    where ranked.key_rank = 1 or ranked.payment_id is null
)

select * from final
