-- Every ledger row held back from Chaser or worth a finance user's look, with the reason in words.
with customers as (
    select * from int_customers
),

invoices as (
    select * from int_invoice_balances
),

credit_notes as (
    select * from int_credit_note_balances
),

payments as (
    select * from stg_payments
),

allocations as (
    select * from stg_credit_allocations
),

known_invoices as (
    select
        invoice_id
    from stg_invoices
),

known_credit_notes as (
    select
        credit_note_id
    from stg_credit_notes
),

customer_duplicates as (
    select
        customer_id,
        updated_at,
        duplicate_row_count
    from stg_customers
    where duplicate_row_count > 1
),

invoice_duplicates as (
    select
        invoice_id,
        updated_at,
        duplicate_row_count
    from stg_invoices
    where duplicate_row_count > 1
),

credit_note_duplicates as (
    select
        credit_note_id,
        updated_at,
        duplicate_row_count
    from stg_credit_notes
    where duplicate_row_count > 1
),

payment_duplicates as (
    select
        payment_id,
        updated_at,
        duplicate_row_count
    from stg_payments
    where duplicate_row_count > 1
),

allocation_duplicates as (
    select
        allocation_id,
        updated_at,
        duplicate_row_count
    from stg_credit_allocations
    where duplicate_row_count > 1
),

held_back as (
    select
        'customer' as entity,
        customer_id as document_key,
        hold_reason_code as reason_code,
        hold_detail as detail
    from customers
    where hold_reason_code is not null
    union all
    select
        'invoice' as entity,
        invoice_id as document_key,
        hold_reason_code as reason_code,
        hold_detail as detail
    from invoices
    where hold_reason_code is not null
    union all
    select
        'credit_note' as entity,
        credit_note_id as document_key,
        hold_reason_code as reason_code,
        hold_detail as detail
    from credit_notes
    where hold_reason_code is not null
),

duplicates as (
    -- a key landed more than once: the row with the latest updated_at was kept, the others were not
    select
        'customer' as entity,
        customer_id as document_key,
        duplicate_row_count,
        updated_at
    from customer_duplicates
    union all
    select
        'invoice' as entity,
        invoice_id as document_key,
        duplicate_row_count,
        updated_at
    from invoice_duplicates
    union all
    select
        'credit_note' as entity,
        credit_note_id as document_key,
        duplicate_row_count,
        updated_at
    from credit_note_duplicates
    union all
    select
        'payment' as entity,
        payment_id as document_key,
        duplicate_row_count,
        updated_at
    from payment_duplicates
    union all
    select
        'allocation' as entity,
        allocation_id as document_key,
        duplicate_row_count,
        updated_at
    from allocation_duplicates
),

duplicate_rejections as (
    select
        entity,
        document_key,
        'duplicate_key' as reason_code,
        format(
            'The ledger holds {} rows for {} {}; the one updated at {} was used and the {} older '
            || 'one(s) held back.',
            duplicate_row_count,
            replace(entity, '_', ' '),
            document_key,
            strftime(updated_at, '%Y-%m-%d %H:%M:%S'),
            duplicate_row_count - 1
        ) as detail,
        'held_back' as severity
    from duplicates
    -- rows without a key are reported as missing_key instead
    where document_key is not null
),

customer_reports as (
    -- an invalid e-mail address is left out of the payload; the customer is still sent
    select
        'customer' as entity,
        customer_id as document_key,
        'invalid_email' as reason_code,
        format(
            'Customer {} ({}) has e-mail address ''{}'', which is not a valid address; '
            || 'it was left out, so Chaser has no one to e-mail reminders to.',
            customer_id,
            company_name,
            email
        ) as detail
    from customers
    where email is not null and contact_email_address is null
    union all
    -- a mobile number that cannot be put in E.164 is left out; the customer is still sent
    select
        'customer' as entity,
        customer_id as document_key,
        'invalid_mobile_number' as reason_code,
        format(
            'Customer {} ({}) has mobile number ''{}'', which cannot be read as a phone number; '
            || 'it was left out.',
            customer_id,
            company_name,
            mobile
        ) as detail
    from customers
    where mobile is not null and mobile_number is null
    union all
    -- a phone number that cannot be put in E.164 is sent as written
    select
        'customer' as entity,
        customer_id as document_key,
        'invalid_phone_number' as reason_code,
        format(
            'Customer {} ({}) has phone number ''{}'', which cannot be read as a phone number; '
            || 'it was sent as written.',
            customer_id,
            company_name,
            phone
        ) as detail
    from customers
    where phone is not null and phone_e164 is null
),

invoice_reports as (
    -- overpaid: still PAID with nothing due, so the customer is never chased; worth a refund look
    select
        'invoice' as entity,
        invoice_id as document_key,
        'overpaid' as reason_code,
        format(
            'Invoice {} ({}) for {} {} has {} applied to it, {} more than its total; '
            || 'it was sent as {} with nothing due.',
            invoice_id,
            invoice_number,
            total_amount::varchar,
            currency_code,
            applied_amount::varchar,
            (applied_amount - total_amount)::varchar,
            -- PAID, unless a DRAFT/SUBMITTED/VOIDED/DELETED status passed through
            invoice_status
        ) as detail
    from invoices
    where hold_reason_code is null and applied_amount > total_amount
    union all
    -- the source says PAID but money is still due: sent as AUTHORISED with the amount due
    select
        'invoice' as entity,
        invoice_id as document_key,
        'paid_with_amount_due' as reason_code,
        format(
            'Invoice {} ({}) is PAID in the ledger but only {} of {} {} has been applied; '
            || 'it was sent as AUTHORISED with {} due.',
            invoice_id,
            invoice_number,
            paid_amount::varchar,
            total_amount::varchar,
            currency_code,
            due_amount::varchar
        ) as detail
    from invoices
    where hold_reason_code is null and source_status = 'PAID' and invoice_status = 'AUTHORISED'
    union all
    -- PAID, but the payment or allocation that settled it has no time (paid_at, allocated_at
    -- NULL sorts last): sent PAID with no fully_paid_date, so Chaser cannot date its archiving
    select
        'invoice' as entity,
        invoice_id as document_key,
        'fully_paid_date_unknown' as reason_code,
        format(
            'Invoice {} ({}) is paid in full, but the payment or credit that settled it has no '
            || 'time in the ledger; it was sent as PAID without a fully paid date.',
            invoice_id,
            invoice_number
        ) as detail
    from invoices
    where hold_reason_code is null and invoice_status = 'PAID' and fully_paid_at is null
),

credit_note_reports as (
    -- more credit used than the note holds: remaining_credit is sent as 0
    select
        'credit_note' as entity,
        credit_note_id as document_key,
        'over_allocated' as reason_code,
        format(
            'Credit note {} ({}) for {} {} has {} allocated or refunded, {} more than its total; '
            || 'it was sent with no remaining credit.',
            credit_note_id,
            credit_note_number,
            total_amount::varchar,
            currency_code,
            allocated_amount::varchar,
            (allocated_amount - total_amount)::varchar
        ) as detail
    from credit_notes
    where allocated_amount > total_amount
),

orphans as (
    -- a payment pointing at no known invoice is ignored by int_invoice_balances; a reversed one
    -- is moot
    select
        'payment' as entity,
        payments.payment_id as document_key,
        'orphan_payment' as reason_code,
        format(
            'Payment {} of {} points at invoice {}, which is not in the ledger; it was ignored.',
            coalesce(payments.payment_id, '(no id)'),
            payments.payment_amount::varchar,
            coalesce(payments.invoice_id, '(none)')
        ) as detail
    from payments
    left join known_invoices
        on payments.invoice_id = known_invoices.invoice_id
    where known_invoices.invoice_id is null and not coalesce(payments.is_reversed, false)
        -- a keyless payment is listed in missing_keys instead (one row per entity)
        and payments.payment_id is not null
    union all
    -- an allocation from no known credit note, or to no known invoice (NULL is a refund), is
    -- ignored by both balances models
    select
        'allocation' as entity,
        allocations.allocation_id as document_key,
        'orphan_allocation' as reason_code,
        format(
            'Credit allocation {} of {} from credit note {} to invoice {} points at a document '
            || 'that is not in the ledger; it was ignored.',
            coalesce(allocations.allocation_id, '(no id)'),
            allocations.allocation_amount::varchar,
            coalesce(allocations.credit_note_id, '(none)'),
            coalesce(allocations.invoice_id, '(refund)')
        ) as detail
    from allocations
    left join known_credit_notes
        on allocations.credit_note_id = known_credit_notes.credit_note_id
    left join known_invoices
        on allocations.invoice_id = known_invoices.invoice_id
    where
        not coalesce(allocations.is_reversed, false)
        -- a keyless allocation is listed in missing_keys instead (one row per entity)
        and allocations.allocation_id is not null
        and (
            known_credit_notes.credit_note_id is null
            or (allocations.invoice_id is not null and known_invoices.invoice_id is null)
        )
),

missing_keys as (
    -- payments and allocations without a key cannot be de-duplicated: each row was counted on
    -- its own (when its documents are known), so a row landed twice counts twice; one report per
    -- entity keeps (entity, key, reason_code) unique
    select
        'payment' as entity,
        cast(null as varchar) as document_key,
        'missing_key' as reason_code,
        format(
            '{} payment row(s) have no payment_id, so they cannot be told apart from duplicates; '
            || 'each was counted toward its invoice when the invoice is in the ledger: {}.',
            count(*),
            string_agg(
                format(
                    '{} to invoice {} at {}{}',
                    coalesce(payment_amount::varchar, '(no amount)'),
                    coalesce(invoice_id, '(none)'),
                    coalesce(strftime(paid_at, '%Y-%m-%d %H:%M:%S'), '(no time)'),
                    case when coalesce(is_reversed, false) then ' (reversed)' else '' end
                ),
                '; '
                order by invoice_id, paid_at, payment_amount
            )
        ) as detail
    from payments
    where payment_id is null
    having count(*) > 0
    union all
    select
        'allocation' as entity,
        cast(null as varchar) as document_key,
        'missing_key' as reason_code,
        format(
            '{} credit allocation row(s) have no allocation_id, so they cannot be told apart from '
            || 'duplicates; each was counted when its documents are in the ledger: {}.',
            count(*),
            string_agg(
                format(
                    '{} from credit note {} to invoice {} at {}{}',
                    coalesce(allocation_amount::varchar, '(no amount)'),
                    coalesce(credit_note_id, '(none)'),
                    coalesce(invoice_id, '(refund)'),
                    coalesce(strftime(allocated_at, '%Y-%m-%d %H:%M:%S'), '(no time)'),
                    case when coalesce(is_reversed, false) then ' (reversed)' else '' end
                ),
                '; '
                order by credit_note_id, invoice_id, allocated_at, allocation_amount
            )
        ) as detail
    from allocations
    where allocation_id is null
    having count(*) > 0
),

rejections as (
    select
        entity,
        document_key,
        reason_code,
        detail,
        -- held back: the row is not sent
        'held_back' as severity
    from held_back
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        severity
    from duplicate_rejections
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        -- reported: sent (or ignored) as the contract says, but worth a look
        'reported' as severity
    from customer_reports
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'reported' as severity
    from invoice_reports
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'reported' as severity
    from credit_note_reports
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'reported' as severity
    from orphans
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'reported' as severity
    from missing_keys
),

final as (
    select
        entity,
        -- a row with no key at all is still listed, under a visible placeholder
        coalesce(document_key, '(missing)') as key,
        reason_code,
        detail,
        severity
    from rejections
    order by entity, key, reason_code
)

select * from final
