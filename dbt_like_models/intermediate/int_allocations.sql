-- Each use of credit (or of cash received on account) with whether it counts, on both sides, and why not when it does not.
with allocations as not materialized (
    select * from stg_credit_allocations
),

credit_notes as (
    select
        credit_note_id,
        customer_id,
        currency_code,
        source_status,
        is_deleted
    from stg_credit_notes
    where credit_note_id is not null
),

payments as (
    select
        payment_id,
        invoice_id,
        customer_id,
        currency_code,
        is_reversed,
        is_deleted
    from stg_payments
    -- only the payments an allocation draws cash from (about 1 in 200 at 10M invoices): judging
    -- every payment against its invoice was most of this model's time
    where payment_id in (
        select allocations.payment_id from allocations where allocations.payment_id is not null
    )
),

invoices as (
    select
        invoice_id,
        customer_id,
        currency_code,
        source_status,
        is_deleted
    from stg_invoices
    where invoice_id is not null
),

payment_sources as (
    select
        payments.payment_id,
        -- the surplus of a payment to an invoice is that invoice's customer's money, in its
        -- currency; cash on account says whose it is in the payment's optional columns
        case
            when payments.invoice_id is null then payments.customer_id
            else paid_invoices.customer_id
        end as customer_id,
        case
            when payments.invoice_id is null then payments.currency_code
            else paid_invoices.currency_code
        end as currency_code,
        -- a payment to an invoice the ledger does not hold is ignored, and so is its surplus
        payments.invoice_id is null or paid_invoices.invoice_id is not null as is_known,
        coalesce(payments.is_reversed, false) or payments.is_deleted as is_withdrawn
    from payments
    left join invoices as paid_invoices
        on payments.invoice_id = paid_invoices.invoice_id
),

joined as (
    select
        allocations.*,
        case
            when allocations.credit_note_id is not null then 'credit_note'
            when allocations.payment_id is not null then 'payment'
        end as source_kind,
        coalesce(allocations.credit_note_id, allocations.payment_id) as source_id,
        credit_notes.credit_note_id is not null or coalesce(payment_sources.is_known, false)
            as is_source_known,
        coalesce(credit_notes.customer_id, payment_sources.customer_id) as source_customer_id,
        coalesce(credit_notes.currency_code, payment_sources.currency_code)
            as source_currency_code,
        credit_notes.source_status as credit_note_source_status,
        coalesce(credit_notes.is_deleted, false) as is_credit_note_deleted,
        coalesce(payment_sources.is_withdrawn, false) as is_payment_withdrawn,
        invoices.invoice_id is not null as is_invoice_known,
        invoices.customer_id as invoice_customer_id,
        invoices.currency_code as invoice_currency_code,
        invoices.source_status as invoice_source_status,
        coalesce(invoices.is_deleted, false) as is_invoice_deleted
    from allocations
    left join credit_notes
        on allocations.credit_note_id = credit_notes.credit_note_id
    left join payment_sources
        on allocations.payment_id = payment_sources.payment_id
    left join invoices
        on allocations.invoice_id = invoices.invoice_id
),

judged as (
    select
        *,
        -- reversed or deleted: counts as never made (not "ignored": nothing to report but the
        -- withdrawal itself)
        coalesce(is_reversed, false) or is_deleted as is_withdrawn,
        -- the first rule an allocation breaks makes it count on neither side (the invoice's
        -- applied, the credit note's allocated or the overpayment's remaining credit)
        case
            when coalesce(is_reversed, false) or is_deleted then null
            -- one allocation uses credit or cash on account, never both
            when credit_note_id is not null and payment_id is not null
                then 'allocation_two_sources'
            when source_kind is null or not is_source_known then 'orphan_allocation'
            -- a NULL invoice_id is a cash refund; any other invoice must be in the ledger
            when invoice_id is not null and not is_invoice_known then 'orphan_allocation'
            -- credit only counts from a credit note that is neither DRAFT, SUBMITTED, VOIDED
            -- nor DELETED (nor removed from the ledger); cash only from a payment not reversed
            -- or removed
            when
                credit_note_source_status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED')
                or is_credit_note_deleted
                or is_payment_withdrawn
                then 'allocation_source_not_usable'
            -- it only pays an invoice that is neither DRAFT, VOIDED nor DELETED
            when
                invoice_id is not null
                and (
                    invoice_source_status in ('DRAFT', 'VOIDED', 'DELETED')
                    or is_invoice_deleted
                )
                then 'allocation_invoice_not_payable'
            -- another customer's credit never pays this customer's invoice; cash on account
            -- whose customer the ledger does not say is the invoice customer's (never chase a
            -- payer for money the ledger itself applied)
            when
                invoice_id is not null
                and (
                    (source_kind = 'credit_note'
                        and source_customer_id is distinct from invoice_customer_id)
                    or (source_kind = 'payment'
                        and source_customer_id <> invoice_customer_id)
                )
                then 'allocation_other_customer'
            -- a EUR credit never pays a GBP invoice
            when
                invoice_id is not null
                and (
                    (source_kind = 'credit_note'
                        and source_currency_code is distinct from invoice_currency_code)
                    or (source_kind = 'payment'
                        and source_currency_code <> invoice_currency_code)
                )
                then 'allocation_other_currency'
        end as ignore_reason_code
    from joined
),

final as (
    select
        allocation_id,
        source_kind,
        source_id,
        credit_note_id,
        payment_id,
        invoice_id,
        allocation_amount,
        allocated_at,
        is_withdrawn,
        is_deleted,
        deleted_at,
        duplicate_row_count,
        -- counts: toward the invoice's applied (when it names one) and the source's use
        not is_withdrawn and ignore_reason_code is null as is_counted,
        ignore_reason_code,
        case ignore_reason_code
            when 'allocation_two_sources' then format(
                'Allocation {} of {} names both credit note {} and payment {}; it was ignored.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                credit_note_id,
                payment_id
            )
            when 'orphan_allocation' then format(
                'Credit allocation {} of {} from {} to invoice {} points at a document that is '
                || 'not in the ledger; it was ignored.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                case
                    when credit_note_id is not null then 'credit note ' || credit_note_id
                    when payment_id is not null then 'payment ' || payment_id
                    else 'no credit note or payment'
                end,
                coalesce(invoice_id, '(refund)')
            )
            when 'allocation_source_not_usable' then format(
                'Allocation {} of {} from {} to invoice {} was ignored on both sides: {}.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                replace(source_kind, '_', ' ') || ' ' || source_id,
                coalesce(invoice_id, '(refund)'),
                case
                    when source_kind = 'payment'
                        then 'the payment was reversed or removed from the ledger'
                    when is_credit_note_deleted
                        then 'the credit note was removed from the ledger'
                    else 'the credit note is ' || credit_note_source_status
                        || ', and only issued credit pays invoices'
                end
            )
            when 'allocation_invoice_not_payable' then format(
                'Allocation {} of {} from {} to invoice {} was ignored on both sides: the invoice '
                || 'is {}.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                replace(source_kind, '_', ' ') || ' ' || source_id,
                invoice_id,
                case
                    when is_invoice_deleted then 'removed from the ledger'
                    else invoice_source_status
                end
            )
            when 'allocation_other_customer' then format(
                'Allocation {} of {} from {} of customer {} to invoice {} of customer {} was '
                || 'ignored on both sides: one customer''s money never pays another''s invoice.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                replace(source_kind, '_', ' ') || ' ' || source_id,
                coalesce(source_customer_id, '(none)'),
                invoice_id,
                coalesce(invoice_customer_id, '(none)')
            )
            when 'allocation_other_currency' then format(
                'Allocation {} of {} from {} in {} to invoice {} in {} was ignored on both sides: '
                || 'money in one currency never pays an invoice in another.',
                coalesce(allocation_id, '(no id)'),
                coalesce(allocation_amount::varchar, '(no amount)'),
                replace(source_kind, '_', ' ') || ' ' || source_id,
                coalesce(source_currency_code, '(none)'),
                invoice_id,
                coalesce(invoice_currency_code, '(none)')
            )
        end as ignore_detail
    from judged
)

select * from final
