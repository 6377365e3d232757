-- The landed credit notes, trimmed and upper-cased where the source's case varies, one row per credit_note_id.
with source_credit_notes as (
    select * from landing.credit_notes
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(credit_note_id), '') as credit_note_id,
        nullif(trim(credit_note_number), '') as credit_note_number,
        nullif(trim(customer_id), '') as customer_id,
        -- the source writes statuses and currencies in any case
        nullif(upper(trim(status)), '') as source_status,
        nullif(upper(trim(currency_code)), '') as currency_code,
        total::decimal(18, 2) as total_amount,
        issue_date::date as issue_date,
        updated_at::timestamp as updated_at
    from source_credit_notes
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections
        count(*) over (partition by credit_note_id) as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by credit_note_id
            order by updated_at desc, credit_note_number, customer_id, source_status,
                currency_code, total_amount, issue_date
        ) as key_rank
    from cleaned
),

final as (
    select
        credit_note_id,
        credit_note_number,
        customer_id,
        source_status,
        currency_code,
        total_amount,
        issue_date,
        updated_at,
        duplicate_row_count
    from ranked
    where key_rank = 1
)

select * from final
