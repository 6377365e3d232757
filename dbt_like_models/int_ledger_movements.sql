-- Every payment and credit allocation, with whether it counts toward an invoice or a credit note, or why it is ignored.
with payments as (
    select * from stg_payments
),

allocations as (
    select * from stg_credit_allocations
),

invoices as (
    select
        invoice_id
    from stg_invoices
),

credit_notes as (
    select
        credit_note_id,
        source_status as credit_note_source_status
    from stg_credit_notes
),

payment_movements as (
    select
        'payment' as movement_type,
        payments.payment_id as movement_id,
        payments.invoice_id,
        null::varchar as credit_note_id,
        null::varchar as credit_note_source_status,
        payments.payment_amount as movement_amount,
        payments.paid_at as moved_at,
        -- a payment whose reversal flag is unknown counts: never chase a customer who may have paid
        coalesce(payments.is_reversed, false) as is_reversed,
        payments.duplicate_row_count,
        -- a payment pointing at no known invoice is reported and ignored
        case when invoices.invoice_id is null then 'orphan_payment' end as orphan_reason_code
    from payments
    left join invoices
        on payments.invoice_id = invoices.invoice_id
),

allocation_movements as (
    select
        'allocation' as movement_type,
        allocations.allocation_id as movement_id,
        allocations.invoice_id,
        allocations.credit_note_id,
        credit_notes.credit_note_source_status,
        allocations.allocation_amount as movement_amount,
        allocations.allocated_at as moved_at,
        -- an allocation whose reversal flag is unknown counts, like a payment
        coalesce(allocations.is_reversed, false) as is_reversed,
        allocations.duplicate_row_count,
        case
            -- an allocation from no known credit note is reported and ignored
            when credit_notes.credit_note_id is null then 'orphan_allocation'
            -- so is one to an invoice that is not known (a NULL invoice_id is a cash refund)
            when allocations.invoice_id is not null and invoices.invoice_id is null
                then 'orphan_allocation'
        end as orphan_reason_code
    from allocations
    left join credit_notes
        on allocations.credit_note_id = credit_notes.credit_note_id
    left join invoices
        on allocations.invoice_id = invoices.invoice_id
),

movements as (
    select * from payment_movements
    union all
    select * from allocation_movements
),

final as (
    select
        movement_type,
        movement_id,
        invoice_id,
        credit_note_id,
        movement_amount,
        moved_at,
        is_reversed,
        duplicate_row_count,
        orphan_reason_code,
        case orphan_reason_code
            when 'orphan_payment' then format(
                'Payment {} of {} points at invoice {}, which is not in the ledger; it was ignored.',
                coalesce(movement_id, '(no id)'),
                movement_amount,
                coalesce(invoice_id, '(none)')
            )
            when 'orphan_allocation' then format(
                'Credit allocation {} of {} from credit note {} to invoice {} points at a document '
                || 'that is not in the ledger; it was ignored.',
                coalesce(movement_id, '(no id)'),
                movement_amount,
                coalesce(credit_note_id, '(none)'),
                coalesce(invoice_id, '(refund)')
            )
        end as orphan_detail,
        -- applied to an invoice: non-reversed payments, and non-reversed allocations from credit
        -- notes that are not VOIDED or DELETED
        (
            not is_reversed
            and orphan_reason_code is null
            and invoice_id is not null
            and coalesce(credit_note_source_status, '') not in ('VOIDED', 'DELETED')
        ) as counts_toward_invoice,
        -- used from a credit note: every non-reversed allocation, refunds included
        (
            movement_type = 'allocation'
            and not is_reversed
            and orphan_reason_code is null
        ) as counts_toward_credit_note
    from movements
)

select * from final
