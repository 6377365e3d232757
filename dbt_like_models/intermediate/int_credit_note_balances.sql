-- Each credit note with how much of it has been used, its Chaser status, and why it is held back (NULL when it is sent).
with credit_notes as (
    select * from stg_credit_notes
),

customers as (
    select
        customer_id,
        hold_reason_code as customer_hold_reason_code
    from int_customers
),

allocations as (
    select * from stg_credit_allocations
),

invoices as (
    select
        invoice_id
    from stg_invoices
),

allocated as (
    select
        allocations.credit_note_id,
        -- allocated = every non-reversed allocation, cash refunds included (unknown flag counts)
        sum(allocations.allocation_amount) as allocated_amount
    from allocations
    left join invoices
        on allocations.invoice_id = invoices.invoice_id
    where not coalesce(allocations.is_reversed, false)
        -- an allocation to an unknown invoice is ignored (a NULL invoice_id is a refund);
        -- chaser_rejections reports it
        and (allocations.invoice_id is null or invoices.invoice_id is not null)
    group by allocations.credit_note_id
),

amounts as (
    select
        credit_notes.*,
        coalesce(allocated.allocated_amount, 0) as allocated_amount,
        -- remaining_credit = max(total - allocated, 0); over-allocation is reported, not sent
        greatest(credit_notes.total_amount - coalesce(allocated.allocated_amount, 0), 0)
            as remaining_amount,
        customers.customer_id as known_customer_id,
        customers.customer_hold_reason_code
    from credit_notes
    left join allocated
        on credit_notes.credit_note_id = allocated.credit_note_id
    left join customers
        on credit_notes.customer_id = customers.customer_id
),

statuses as (
    select
        *,
        case
            -- DRAFT, SUBMITTED, VOIDED and DELETED pass through as the source says
            when source_status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED') then source_status
            -- otherwise ACTIVE while credit remains, PAID once it is all used
            when source_status in ('AUTHORISED', 'PAID') and remaining_amount > 0 then 'ACTIVE'
            when source_status in ('AUTHORISED', 'PAID') then 'PAID'
        end as credit_note_status
    from amounts
),

held as (
    select
        *,
        -- the first rule a credit note breaks holds it back; Chaser never sees it
        case
            when credit_note_id is null then 'missing_key'
            when credit_note_number is null then 'missing_credit_note_number'
            when issue_date is null then 'missing_issue_date'
            when credit_note_status is null then 'unknown_status'
            -- the currency must be an ISO 4217 code
            when currency_code is null or not chaser_is_iso4217(currency_code)
                then 'invalid_currency'
            when total_amount is null then 'missing_total'
            -- Chaser rejects a credit note whose customer it does not hold
            when known_customer_id is null then 'unknown_customer'
            when customer_hold_reason_code is not null then 'customer_rejected'
        end as hold_reason_code
    from statuses
),

final as (
    select
        credit_note_id,
        credit_note_number,
        customer_id,
        source_status,
        credit_note_status,
        currency_code,
        total_amount,
        allocated_amount,
        remaining_amount,
        issue_date,
        duplicate_row_count,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then format(
                'A credit note row has no credit_note_id (number {}); it was not sent.',
                coalesce(credit_note_number, 'none')
            )
            when 'missing_credit_note_number' then format(
                'Credit note {} has no credit note number; it was not sent.', credit_note_id
            )
            when 'missing_issue_date' then format(
                'Credit note {} ({}) has no issue date; it was not sent.',
                credit_note_id,
                credit_note_number
            )
            when 'unknown_status' then format(
                'Credit note {} ({}) has status {}, which is not one of DRAFT, SUBMITTED, '
                || 'AUTHORISED, PAID, VOIDED, DELETED; it was not sent.',
                credit_note_id,
                credit_note_number,
                coalesce(source_status, '(none)')
            )
            when 'invalid_currency' then format(
                'Credit note {} ({}) has currency {}, which is not an ISO 4217 code; '
                || 'it was not sent.',
                credit_note_id,
                credit_note_number,
                coalesce(currency_code, '(none)')
            )
            when 'missing_total' then format(
                'Credit note {} ({}) has no total; it was not sent.',
                credit_note_id,
                credit_note_number
            )
            when 'unknown_customer' then format(
                'Credit note {} ({}) names customer {}, which is not in the ledger; '
                || 'it was not sent.',
                credit_note_id,
                credit_note_number,
                coalesce(customer_id, '(none)')
            )
            when 'customer_rejected' then format(
                'Credit note {} ({}) belongs to customer {}, which was not sent ({}); '
                || 'so neither was the credit note.',
                credit_note_id,
                credit_note_number,
                customer_id,
                customer_hold_reason_code
            )
        end as hold_detail
    from held
)

select * from final
