-- The landed invoices, trimmed and upper-cased where the source's case varies, one row per invoice_id.
with source_invoices as (
    select * from landing.invoices
),

cleaned as (
    select
        -- a blank string is a missing value
        nullif(trim(invoice_id), '') as invoice_id,
        nullif(trim(invoice_number), '') as invoice_number,
        nullif(trim(customer_id), '') as customer_id,
        -- the source writes statuses and currencies in any case
        nullif(upper(trim(status)), '') as source_status,
        nullif(upper(trim(currency_code)), '') as currency_code,
        sub_total::decimal(18, 2) as sub_total_amount,
        total::decimal(18, 2) as total_amount,
        issue_date::date as issue_date,
        due_date::date as due_date,
        updated_at::timestamp as updated_at
    from source_invoices
),

ranked as (
    select
        *,
        -- a key landed more than once is a source bug, reported by chaser_rejections
        count(*) over (partition by invoice_id) as duplicate_row_count,
        -- the row with the latest updated_at wins; ties fall to the row's content so reruns agree
        row_number() over (
            partition by invoice_id
            order by updated_at desc, invoice_number, customer_id, source_status, currency_code,
                sub_total_amount, total_amount, issue_date, due_date
        ) as key_rank
    from cleaned
),

final as (
    select
        invoice_id,
        invoice_number,
        customer_id,
        source_status,
        currency_code,
        sub_total_amount,
        total_amount,
        issue_date,
        due_date,
        updated_at,
        duplicate_row_count
    from ranked
    where key_rank = 1
)

select * from final
