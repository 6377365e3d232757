-- The landed credit notes, trimmed and upper-cased where the source's case varies, one row per credit_note_id, with whether the ledger deleted it.
with source_credit_notes as not materialized (
    select * from landing.credit_notes
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
    where table_name = 'credit_notes'
    group by key
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
        updated_at::timestamp as updated_at,
        deleted_spellings.spelling_deleted_at
    from source_credit_notes
    left join deleted_spellings
        on deleted_spellings.deleted_key = source_credit_notes.credit_note_id
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections; rows without
        -- a key share no key (NULL is not a value), so each counts as one row of its own
        case
            -- a spelling the warehouse no longer has is no duplicate of a live one
            when credit_note_id is not null then coalesce(
                nullif(count(*) filter (where spelling_deleted_at is null)
                    over (partition by credit_note_id), 0),
                count(*) over (partition by credit_note_id)
            )
            else 1
        end as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by credit_note_id
            order by spelling_deleted_at is not null, updated_at desc, credit_note_number, customer_id, source_status,
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
        -- deleted when every spelling of the key went (a live one would have won)
        ranked.credit_note_id is not null and ranked.spelling_deleted_at is not null as is_deleted,
        case when ranked.credit_note_id is not null then ranked.spelling_deleted_at end as deleted_at
    from ranked
    -- a row without a key cannot be de-duplicated: every one is kept (and held back as
    -- missing_key), so none disappears unreported
    where ranked.key_rank = 1 or ranked.credit_note_id is null
)

select * from final
