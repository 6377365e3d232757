-- The invoices Chaser holds for the months of issue being built, in the Chaser payload's shape.
with invoices as (
    select * from int_invoice_balances
    -- the partition: invoices issued in [window_start, window_end); their payments count whenever made
    where issue_date >= $window_start and issue_date < $window_end
),

sendable as (
    select * from invoices
    -- a held-back invoice is never sent (chaser_rejections says why); an invoice of a held-back
    -- customer is here, and the sync sends it while Chaser already holds the customer
    where hold_reason_code is null
),

final as (
    select
        invoice_id,
        invoice_number,
        customer_id as customer_external_id,
        invoice_status as status,
        currency_code,
        sub_total_amount::decimal(18, 2) as sub_total,
        total_amount::decimal(18, 2) as total,
        paid_amount::decimal(18, 2) as amount_paid,
        due_amount::decimal(18, 2) as amount_due,
        -- Chaser dates: YYYY-MM-DDTHH:mm:ss.sssZ in UTC
        strftime(issue_date, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as date,
        strftime(due_date, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as due_date,
        -- set only for PAID invoices (int_invoice_balances chose the moment)
        strftime(fully_paid_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as fully_paid_date
    from sendable
)

select * from final
