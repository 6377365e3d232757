-- The landed credit notes, trimmed and upper-cased where the source's case varies, one row per credit_note_id, with whether the ledger deleted it.
with source_credit_notes as not materialized (
    select * from landing.credit_notes
),

source_deleted_keys as not materialized (
    select * from landing.deleted_keys
),

deleted_credit_notes as (
    -- a key gone from the warehouse keeps its last landed row; deleted_keys says when it went
    select
        trim(key) as credit_note_id,
        max(deleted_at) as deleted_at
    from source_deleted_keys
    where table_name = 'credit_notes'
    group by trim(key)
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
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            when credit_note_id is not null then count(*) over (partition by credit_note_id)
            else 1
        end as duplicate_row_count,
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
        ranked.credit_note_id,
        ranked.credit_note_number,
        ranked.customer_id,
        ranked.source_status,
        ranked.currency_code,
        ranked.total_amount,
        ranked.issue_date,
        ranked.updated_at,
        ranked.duplicate_row_count,
        deleted_credit_notes.credit_note_id is not null as is_deleted,
        deleted_credit_notes.deleted_at
    from ranked
    left join deleted_credit_notes
        on ranked.credit_note_id = deleted_credit_notes.credit_note_id
    -- a row without a key cannot be de-duplicated: every one is kept (and held back as
    -- missing_key), so none disappears unreported
    where ranked.key_rank = 1 or ranked.credit_note_id is null
)

select * from final
