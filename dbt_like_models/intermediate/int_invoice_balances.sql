-- Each invoice with what has been applied to it, its Chaser status and fully paid time, and why it is held back (NULL when it is sent).
with invoices as (
    select * from stg_invoices
),

customers as (
    select
        customer_id,
        hold_reason_code as customer_hold_reason_code
    from int_customers
),

payments as (
    select * from stg_payments
),

allocations as (
    select * from stg_credit_allocations
),

credit_notes as (
    select
        credit_note_id,
        source_status as credit_note_source_status
    from stg_credit_notes
),

applied_payments as (
    select
        invoice_id,
        payment_id as movement_id,
        payment_amount as movement_amount,
        paid_at as moved_at
    from payments
    -- a reversed payment counts as never made; an unknown flag counts (never chase a payer)
    where not coalesce(is_reversed, false)
),

applied_credit as (
    select
        allocations.invoice_id,
        allocations.allocation_id as movement_id,
        allocations.allocation_amount as movement_amount,
        allocations.allocated_at as moved_at
    -- an allocation from an unknown credit note is ignored (chaser_rejections reports it)
    from allocations
    inner join credit_notes
        on allocations.credit_note_id = credit_notes.credit_note_id
    -- a reversed allocation counts as never made; an unknown flag counts
    where not coalesce(allocations.is_reversed, false)
        -- credit from a VOIDED or DELETED credit note is not applied
        and coalesce(credit_notes.credit_note_source_status, '') not in ('VOIDED', 'DELETED')
),

movements as (
    select * from applied_payments
    union all
    select * from applied_credit
),

running_applied as (
    select
        movements.invoice_id,
        movements.movement_amount,
        movements.moved_at,
        invoices.total_amount,
        -- the running applied sum, in the order money arrived (time, then id); payments and
        -- allocations share one order, ids compared as text across both kinds ('A-1' < 'P-1'),
        -- and a movement without a time sorts last (chaser_rejections reports a PAID invoice
        -- left without a fully paid date)
        sum(movements.movement_amount) over (
            partition by movements.invoice_id
            order by movements.moved_at, movements.movement_id
            rows between unbounded preceding and current row
        ) as running_applied_amount
    from movements
    -- money pointing at an unknown invoice (or a refund, invoice_id NULL) is applied to nothing;
    -- chaser_rejections reports the orphans
    inner join invoices
        on movements.invoice_id = invoices.invoice_id
),

applied as (
    select
        invoice_id,
        sum(movement_amount) as applied_amount,
        -- fully paid at the payment or allocation where the running sum first reached the total
        min(moved_at) filter (where running_applied_amount >= total_amount) as total_reached_at
    from running_applied
    group by invoice_id
),

amounts as (
    select
        invoices.*,
        coalesce(applied.applied_amount, 0) as applied_amount,
        -- amount_paid = min(applied, total): an overpayment never makes amount_due negative
        least(coalesce(applied.applied_amount, 0), invoices.total_amount) as paid_amount,
        applied.total_reached_at,
        customers.customer_id as known_customer_id,
        customers.customer_hold_reason_code
    from invoices
    left join applied
        on invoices.invoice_id = applied.invoice_id
    left join customers
        on invoices.customer_id = customers.customer_id
),

statuses as (
    select
        *,
        -- amount_due = total - amount_paid, exact in DECIMAL(18,2)
        total_amount - paid_amount as due_amount,
        case
            -- DRAFT, SUBMITTED, VOIDED and DELETED pass through as the source says
            when source_status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED') then source_status
            -- AUTHORISED or PAID is PAID exactly when nothing is due (source PAID with money due
            -- goes out AUTHORISED, and is reported)
            when source_status in ('AUTHORISED', 'PAID') and total_amount - paid_amount = 0
                then 'PAID'
            when source_status in ('AUTHORISED', 'PAID') then 'AUTHORISED'
        end as invoice_status
    from amounts
),

held as (
    select
        *,
        case
            when invoice_status = 'PAID' and total_amount = 0
                -- a zero-total invoice is fully paid the day it is issued
                then issue_date::timestamp
            when invoice_status = 'PAID'
                -- otherwise when the running applied sum first reached the total
                then total_reached_at
        end as fully_paid_at,
        -- the first rule an invoice breaks holds it back; Chaser never sees it
        case
            when invoice_id is null then 'missing_key'
            when invoice_number is null then 'missing_invoice_number'
            when issue_date is null then 'missing_issue_date'
            when due_date is null then 'missing_due_date'
            when invoice_status is null then 'unknown_status'
            -- the currency must be an ISO 4217 code
            when currency_code is null or not chaser_is_iso4217(currency_code)
                then 'invalid_currency'
            when total_amount is null then 'missing_total'
            when total_amount < 0 then 'negative_total'
            -- Chaser rejects an invoice whose customer it does not hold
            when known_customer_id is null then 'unknown_customer'
            when customer_hold_reason_code is not null then 'customer_rejected'
        end as hold_reason_code
    from statuses
),

final as (
    select
        invoice_id,
        invoice_number,
        customer_id,
        source_status,
        invoice_status,
        currency_code,
        sub_total_amount,
        total_amount,
        applied_amount,
        paid_amount,
        due_amount,
        issue_date,
        due_date,
        fully_paid_at,
        duplicate_row_count,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then format(
                'An invoice row has no invoice_id (invoice number {}); it was not sent.',
                coalesce(invoice_number, 'none')
            )
            when 'missing_invoice_number' then format(
                'Invoice {} has no invoice number; it was not sent.', invoice_id
            )
            when 'missing_issue_date' then format(
                'Invoice {} ({}) has no issue date; it was not sent.', invoice_id, invoice_number
            )
            when 'missing_due_date' then format(
                'Invoice {} ({}) has no due date; it was not sent.', invoice_id, invoice_number
            )
            when 'unknown_status' then format(
                'Invoice {} ({}) has status {}, which is not one of DRAFT, SUBMITTED, AUTHORISED, '
                || 'PAID, VOIDED, DELETED; it was not sent.',
                invoice_id,
                invoice_number,
                coalesce(source_status, '(none)')
            )
            when 'invalid_currency' then format(
                'Invoice {} ({}) has currency {}, which is not an ISO 4217 code; it was not sent.',
                invoice_id,
                invoice_number,
                coalesce(currency_code, '(none)')
            )
            when 'missing_total' then format(
                'Invoice {} ({}) has no total; it was not sent.', invoice_id, invoice_number
            )
            when 'negative_total' then format(
                'Invoice {} ({}) has a negative total of {} {}; it was not sent.',
                invoice_id,
                invoice_number,
                total_amount::varchar,
                currency_code
            )
            when 'unknown_customer' then format(
                'Invoice {} ({}) names customer {}, which is not in the ledger; it was not sent.',
                invoice_id,
                invoice_number,
                coalesce(customer_id, '(none)')
            )
            when 'customer_rejected' then format(
                'Invoice {} ({}) belongs to customer {}, which was not sent ({}); '
                || 'so neither was the invoice.',
                invoice_id,
                invoice_number,
                customer_id,
                customer_hold_reason_code
            )
        end as hold_detail
    from held
)

select * from final
