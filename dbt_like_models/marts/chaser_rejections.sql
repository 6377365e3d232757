-- Every ledger row held back from Chaser or worth a finance user's look, with the reason in words.
with customers as not materialized (
    select * from int_customers
),

invoices as not materialized (
    select * from int_invoice_balances
),

credit_notes as not materialized (
    select * from int_credit_note_balances
),

contact_persons as not materialized (
    select * from int_contact_persons
),

overpayments as not materialized (
    select * from int_overpayments
),

allocations as not materialized (
    select * from int_allocations
),

email_addresses as not materialized (
    select * from int_email_addresses
),

payments as not materialized (
    select * from stg_payments
),

known_invoices as (
    select
        invoice_id
    from stg_invoices
    where invoice_id is not null
),

ledger_contacts as not materialized (
    select * from stg_contacts
),

chaser_holdings as (
    select
        object,
        key
    from chaser_sync.holding_keys
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

contact_duplicates as (
    select
        contact_id,
        updated_at,
        duplicate_row_count
    from stg_contacts
    where duplicate_row_count > 1
),

held_back as (
    -- rows with a key that break a rule; rows without one are listed together in missing_keys
    select
        'customer' as entity,
        'customers' as chaser_object,
        customer_id as document_key,
        hold_reason_code as reason_code,
        hold_field,
        hold_detail as detail
    from customers
    where hold_reason_code is not null and customer_id is not null
    union all
    select
        'invoice' as entity,
        'invoices' as chaser_object,
        invoice_id as document_key,
        hold_reason_code as reason_code,
        hold_field,
        hold_detail as detail
    from invoices
    where hold_reason_code is not null and invoice_id is not null
    union all
    select
        'credit_note' as entity,
        'credit_notes' as chaser_object,
        credit_note_id as document_key,
        hold_reason_code as reason_code,
        hold_field,
        hold_detail as detail
    from credit_notes
    where hold_reason_code is not null and credit_note_id is not null
    union all
    select
        'contact_person' as entity,
        'contact_persons' as chaser_object,
        external_id as document_key,
        hold_reason_code as reason_code,
        hold_field,
        hold_detail as detail
    from contact_persons
    where hold_reason_code is not null and external_id is not null
    union all
    select
        'overpayment' as entity,
        'overpayments' as chaser_object,
        overpayment_id as document_key,
        hold_reason_code as reason_code,
        hold_field,
        hold_detail as detail
    from overpayments
    where hold_reason_code is not null
),

stale_in_chaser as (
    -- sent, now unsendable: Chaser holds a version the ledger has moved on from, and the new
    -- one breaks a rule; the data-lag check counts it as a change Chaser has not received
    select
        held_back.entity,
        held_back.document_key,
        'stale_in_chaser' as reason_code,
        format(
            'Chaser holds {} {}, but its new version cannot be sent (field {}: {}); Chaser '
            || 'keeps showing the version last sent until the ledger is fixed. {}',
            replace(held_back.entity, '_', ' '),
            held_back.document_key,
            held_back.hold_field,
            held_back.reason_code,
            held_back.detail
        ) as detail
    from held_back
    inner join chaser_holdings
        on held_back.chaser_object = chaser_holdings.object
        and held_back.document_key = chaser_holdings.key
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
    union all
    select
        'contact_person' as entity,
        contact_id as document_key,
        duplicate_row_count,
        updated_at
    from contact_duplicates
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
            coalesce(strftime(updated_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time'),
            duplicate_row_count - 1
        ) as detail
    from duplicates
    -- rows without a key are reported as missing_key instead
    where document_key is not null
),

invalid_addresses as (
    select
        owner_entity,
        owner_id,
        count(*) filter (where email_address is not null) as valid_count,
        string_agg('''' || typed_address || '''', ', ' order by address_position)
            filter (where email_address is null) as invalid_list,
        string_agg(email_address, ', ' order by address_position)
            filter (where email_address is not null and not is_primary and not is_repeat)
            as extra_list
    from email_addresses
    group by owner_entity, owner_id
),

customer_reports as (
    -- an invalid address is left out of the payload; the customer is still sent
    select
        'customer' as entity,
        customers.customer_id as document_key,
        'invalid_email' as reason_code,
        format(
            'Customer {} ({}) has e-mail address(es) {}, which are not valid addresses; they '
            || 'were left out{}.',
            customers.customer_id,
            coalesce(customers.company_name, 'no company name'),
            invalid_addresses.invalid_list,
            case
                when invalid_addresses.valid_count = 0
                    then ', so Chaser has no one to e-mail reminders to'
                else ', and the valid ones are used'
            end
        ) as detail
    from customers
    inner join invalid_addresses
        on invalid_addresses.owner_entity = 'customer'
        and customers.customer_id = invalid_addresses.owner_id
    where invalid_addresses.invalid_list is not null
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
            coalesce(company_name, 'no company name'),
            mobile
        ) as detail
    from customers
    where customer_id is not null and mobile is not null and mobile_number is null
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
            coalesce(company_name, 'no company name'),
            phone
        ) as detail
    from customers
    where customer_id is not null and phone is not null and phone_e164 is null
),

contact_person_reports as (
    -- a ledger contact's invalid addresses are left out; the contact person is still sent
    select
        'contact_person' as entity,
        contact_persons.external_id as document_key,
        'invalid_email' as reason_code,
        format(
            'Contact {} ({} {}) of customer {} has e-mail address(es) {}, which are not valid '
            || 'addresses; they were left out{}.',
            contact_persons.external_id,
            coalesce(contact_persons.contact_first_name, ''),
            coalesce(contact_persons.contact_last_name, ''),
            coalesce(contact_persons.customer_id, '(none)'),
            invalid_addresses.invalid_list,
            case
                when invalid_addresses.valid_count = 0 then ', so Chaser cannot e-mail them'
                else ''
            end
        ) as detail
    from contact_persons
    inner join invalid_addresses
        on invalid_addresses.owner_entity = 'contact_person'
        and contact_persons.external_id = invalid_addresses.owner_id
    where invalid_addresses.invalid_list is not null and contact_persons.contact_person_source = 'contact'
    union all
    -- a contact is one person with one address: the first valid one
    select
        'contact_person' as entity,
        contact_persons.external_id as document_key,
        'extra_email_left_out' as reason_code,
        format(
            'Contact {} of customer {} has more than one address; {} was used and {} left out '
            || '(give each person a contact row of their own).',
            contact_persons.external_id,
            coalesce(contact_persons.customer_id, '(none)'),
            contact_persons.contact_email_address,
            invalid_addresses.extra_list
        ) as detail
    from contact_persons
    inner join invalid_addresses
        on invalid_addresses.owner_entity = 'contact_person'
        and contact_persons.external_id = invalid_addresses.owner_id
    where invalid_addresses.extra_list is not null and contact_persons.contact_person_source = 'contact'
    union all
    select
        'contact_person' as entity,
        external_id as document_key,
        'invalid_mobile_number' as reason_code,
        format(
            'Contact {} of customer {} has mobile number ''{}'', which cannot be read as a phone '
            || 'number; it was left out.',
            external_id,
            coalesce(customer_id, '(none)'),
            mobile
        ) as detail
    from contact_persons
    where external_id is not null and mobile is not null and mobile_number is null
    union all
    select
        'contact_person' as entity,
        external_id as document_key,
        'invalid_phone_number' as reason_code,
        format(
            'Contact {} of customer {} has phone number ''{}'', which cannot be read as a phone '
            || 'number; it was sent as written.',
            external_id,
            coalesce(customer_id, '(none)'),
            phone
        ) as detail
    from contact_persons
    where external_id is not null and phone is not null and phone_e164 is null
),

surplus_homes as (
    -- where an overpaid invoice's surplus went: the overpayments its payments made
    select
        invoice_id,
        string_agg(overpayment_id, ', ' order by overpayment_id) as overpayment_list
    from overpayments
    where overpayment_kind = 'surplus'
    group by invoice_id
),

invoice_reports as (
    -- overpaid: still PAID with nothing due, so the customer is never chased; the surplus is
    -- unapplied cash, sent as an overpayment
    select
        'invoice' as entity,
        invoices.invoice_id as document_key,
        'overpaid' as reason_code,
        format(
            'Invoice {} ({}) for {} {} has {} applied to it, {} more than its total; '
            || 'it was sent as {} with nothing due. {}',
            invoices.invoice_id,
            invoices.invoice_number,
            invoices.total_amount::varchar,
            invoices.currency_code,
            invoices.applied_amount::varchar,
            (invoices.applied_amount - invoices.total_amount)::varchar,
            -- PAID, unless a DRAFT/SUBMITTED/VOIDED/DELETED status passed through
            invoices.invoice_status,
            case
                when surplus_homes.overpayment_list is not null then format(
                    'The surplus is unapplied cash: overpayment {} in Chaser.',
                    surplus_homes.overpayment_list
                )
                else 'No overpayment holds the surplus: it came from credit (which stays used) '
                    || 'or from a payment without a payment_id.'
            end
        ) as detail
    from invoices
    left join surplus_homes
        on invoices.invoice_id = surplus_homes.invoice_id
    where invoices.hold_reason_code is null and invoices.applied_amount > invoices.total_amount
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
    -- NULL sorts last) or one Chaser cannot write: sent PAID with no fully_paid_date, so Chaser
    -- cannot date its archiving
    select
        'invoice' as entity,
        invoice_id as document_key,
        'fully_paid_date_unknown' as reason_code,
        format(
            'Invoice {} ({}) is paid in full, but the payment or credit that settled it has no '
            || 'usable time in the ledger; it was sent as PAID without a fully paid date.',
            invoice_id,
            invoice_number
        ) as detail
    from invoices
    where hold_reason_code is null and invoice_status = 'PAID' and fully_paid_at is null
    union all
    -- more refunded than paid: amount_paid is sent as 0, never below, so amount_due never
    -- exceeds the total
    select
        'invoice' as entity,
        invoice_id as document_key,
        'applied_below_zero' as reason_code,
        format(
            'Invoice {} ({}) has {} {} applied in all (more refunded than paid); it was sent with '
            || 'nothing paid and {} due.',
            invoice_id,
            invoice_number,
            applied_amount::varchar,
            currency_code,
            due_amount::varchar
        ) as detail
    from invoices
    where hold_reason_code is null and applied_amount < 0
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
    where hold_reason_code is null and allocated_amount > total_amount
),

overpayment_reports as (
    -- more unapplied cash used than there was: remaining_credit is sent as 0
    select
        'overpayment' as entity,
        overpayment_id as document_key,
        'over_applied' as reason_code,
        format(
            'Payment {} left {} {} unapplied, but {} of it was applied later and {} refunded; '
            || 'it was sent with no remaining credit.',
            overpayment_id,
            received_amount::varchar,
            currency_code,
            applied_amount::varchar,
            consumed_amount::varchar
        ) as detail
    from overpayments
    where
        hold_reason_code is null
        and overpayment_status in ('ACTIVE', 'PAID')
        and received_amount - consumed_amount - applied_amount < 0
),

cash_without_surplus_reports as (
    -- cash applied from a payment that paid its own invoice and left nothing unapplied (neither
    -- on account nor a surplus): the allocations still count on the invoices they name, as
    -- over-allocated credit does, and the ledger is told it applies cash it does not have
    select
        'payment' as entity,
        applied.payment_id as document_key,
        'over_applied' as reason_code,
        format(
            'Payment {} paid invoice {} and left nothing unapplied, yet allocations apply or '
            || 'refund {} more of it; they were counted as the ledger says.',
            applied.payment_id,
            payments.invoice_id,
            applied.applied_amount::varchar
        ) as detail
    from (
        select
            source_id as payment_id,
            sum(allocation_amount) as applied_amount
        from allocations
        where is_counted and source_kind = 'payment'
        group by source_id
    ) as applied
    join payments
        on payments.payment_id = applied.payment_id
    where payments.invoice_id is not null
        and applied.applied_amount > 0
        and not exists (
            select 1 from overpayments where overpayments.overpayment_id = applied.payment_id
        )
),

customer_held_back as (
    -- a document of a held-back customer reaches its mart: the sync sends it while Chaser
    -- already holds the customer (a payment on it still goes), and holds it back otherwise
    select
        'invoice' as entity,
        invoice_id as document_key,
        format(
            'Invoice {} ({}) belongs to customer {}, which is held back ({}); the invoice goes to '
            || 'Chaser only while Chaser already holds the customer.',
            invoice_id,
            invoice_number,
            customer_id,
            customer_hold_reason_code
        ) as detail
    from invoices
    where hold_reason_code is null and customer_hold_reason_code is not null
    union all
    select
        'credit_note' as entity,
        credit_note_id as document_key,
        format(
            'Credit note {} ({}) belongs to customer {}, which is held back ({}); the credit note '
            || 'goes to Chaser only while Chaser already holds the customer.',
            credit_note_id,
            credit_note_number,
            customer_id,
            customer_hold_reason_code
        ) as detail
    from credit_notes
    where hold_reason_code is null and customer_hold_reason_code is not null
    union all
    select
        'contact_person' as entity,
        external_id as document_key,
        format(
            'Contact person {} belongs to customer {}, which is held back ({}); it goes to Chaser '
            || 'only while Chaser already holds the customer.',
            external_id,
            customer_id,
            customer_hold_reason_code
        ) as detail
    from contact_persons
    where hold_reason_code is null and customer_hold_reason_code is not null
    union all
    select
        'overpayment' as entity,
        overpayment_id as document_key,
        format(
            'Overpayment {} belongs to customer {}, which is held back ({}); it goes to Chaser '
            || 'only while Chaser already holds the customer.',
            overpayment_id,
            customer_id,
            customer_hold_reason_code
        ) as detail
    from overpayments
    where hold_reason_code is null and customer_hold_reason_code is not null
),

withdrawals as (
    -- removed from the ledger (a hard delete the extract found): documents go once more as
    -- DELETED, customers and contacts as ARCHIVED, payments and allocations count as never made
    select
        'customer' as entity,
        customer_id as document_key,
        format(
            'Customer {} ({}) was removed from the ledger (found gone at {}); it is sent as '
            || 'ARCHIVED, which stops its reminders.',
            customer_id,
            coalesce(company_name, 'no company name'),
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from customers
    where is_deleted
    union all
    select
        'invoice' as entity,
        invoice_id as document_key,
        format(
            'Invoice {} ({}) was removed from the ledger (found gone at {}); it is sent once more '
            || 'as DELETED, so Chaser stops chasing it.',
            invoice_id,
            coalesce(invoice_number, 'no number'),
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from invoices
    where is_deleted
    union all
    select
        'credit_note' as entity,
        credit_note_id as document_key,
        format(
            'Credit note {} ({}) was removed from the ledger (found gone at {}); it is sent once '
            || 'more as DELETED, so statements stop subtracting it.',
            credit_note_id,
            coalesce(credit_note_number, 'no number'),
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from credit_notes
    where is_deleted
    union all
    select
        'contact_person' as entity,
        contact_id as document_key,
        format(
            'Contact {} of customer {} was removed from the ledger (found gone at {}); it is '
            || 'archived in Chaser.',
            contact_id,
            coalesce(customer_id, '(none)'),
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from ledger_contacts
    where is_deleted
    union all
    select
        'payment' as entity,
        payment_id as document_key,
        format(
            'Payment {} of {} {} was removed from the ledger (found gone at {}); it counts as '
            || 'never made.',
            payment_id,
            coalesce(payment_amount::varchar, '(no amount)'),
            case
                when invoice_id is null then 'received on account'
                else 'to invoice ' || invoice_id
            end,
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from payments
    where is_deleted
    union all
    select
        'allocation' as entity,
        allocation_id as document_key,
        format(
            'Allocation {} of {} from {} to invoice {} was removed from the ledger (found gone '
            || 'at {}); it counts as never made.',
            allocation_id,
            coalesce(allocation_amount::varchar, '(no amount)'),
            coalesce(replace(source_kind, '_', ' ') || ' ' || source_id, 'no source'),
            coalesce(invoice_id, '(refund)'),
            coalesce(strftime(deleted_at, '%Y-%m-%d %H:%M:%S'), 'an unknown time')
        ) as detail
    from allocations
    where is_deleted
),

orphans as (
    -- a payment pointing at no known invoice is ignored by int_invoice_balances; a reversed or
    -- removed one is moot; one without an invoice is cash on account (an overpayment)
    select
        'payment' as entity,
        payments.payment_id as document_key,
        'orphan_payment' as reason_code,
        format(
            'Payment {} of {} points at invoice {}, which is not in the ledger; it was ignored.',
            payments.payment_id,
            coalesce(payments.payment_amount::varchar, '(no amount)'),
            payments.invoice_id
        ) as detail
    from payments
    left join known_invoices
        on payments.invoice_id = known_invoices.invoice_id
    where
        payments.invoice_id is not null
        and known_invoices.invoice_id is null
        and not coalesce(payments.is_reversed, false)
        and not payments.is_deleted
        -- a keyless payment is listed in missing_keys instead (one row per entity)
        and payments.payment_id is not null
    union all
    -- a payment or allocation without an amount counts as nothing: say so, or a payer is chased
    -- with no word of why
    select
        'payment' as entity,
        payment_id as document_key,
        'missing_amount' as reason_code,
        format(
            'Payment {} {} has no amount; it counts as nothing.',
            payment_id,
            case
                when invoice_id is null then 'received on account'
                else 'to invoice ' || invoice_id
            end
        ) as detail
    from payments
    where
        payment_amount is null
        and payment_id is not null
        and not coalesce(is_reversed, false)
        and not is_deleted
    union all
    select
        'allocation' as entity,
        allocation_id as document_key,
        'missing_amount' as reason_code,
        format(
            'Allocation {} from {} to invoice {} has no amount; it counts as nothing.',
            allocation_id,
            coalesce(replace(source_kind, '_', ' ') || ' ' || source_id, 'no source'),
            coalesce(invoice_id, '(refund)')
        ) as detail
    from allocations
    where
        allocation_amount is null
        and allocation_id is not null
        and ignore_reason_code is null
        and not is_withdrawn
    union all
    -- allocations that count on neither side: unknown documents, unusable credit or cash,
    -- invoices that cannot be paid, another customer's money, another currency
    select
        'allocation' as entity,
        allocation_id as document_key,
        ignore_reason_code as reason_code,
        ignore_detail as detail
    from allocations
    where ignore_reason_code is not null and allocation_id is not null
),

missing_keys as (
    -- rows without a key cannot be told apart: one report per entity lists them all, which
    -- keeps (entity, key, reason_code) unique. Documents and contacts without a key are not
    -- sent; payments and allocations without one still count (never chase a payer).
    select
        'customer' as entity,
        format(
            '{} customer row(s) have no customer_id, so Chaser cannot match them; they were not '
            || 'sent (company names: {}).',
            count(*),
            string_agg(coalesce(company_name, '(none)'), ', ' order by company_name)
        ) as detail,
        'held_back' as severity
    from customers
    where customer_id is null
    having count(*) > 0
    union all
    select
        'invoice' as entity,
        format(
            '{} invoice row(s) have no invoice_id, so Chaser cannot match them; they were not '
            || 'sent (invoice numbers: {}).',
            count(*),
            string_agg(
                format(
                    '{} of customer {} for {} {}',
                    coalesce(invoice_number, '(none)'),
                    coalesce(customer_id, '(none)'),
                    coalesce(total_amount::varchar, '(no total)'),
                    coalesce(currency_code, '')
                ),
                '; '
                order by invoice_number, customer_id
            )
        ) as detail,
        'held_back' as severity
    from invoices
    where invoice_id is null
    having count(*) > 0
    union all
    select
        'credit_note' as entity,
        format(
            '{} credit note row(s) have no credit_note_id, so Chaser cannot match them; they '
            || 'were not sent (numbers: {}).',
            count(*),
            string_agg(
                format(
                    '{} of customer {}',
                    coalesce(credit_note_number, '(none)'),
                    coalesce(customer_id, '(none)')
                ),
                '; '
                order by credit_note_number, customer_id
            )
        ) as detail,
        'held_back' as severity
    from credit_notes
    where credit_note_id is null
    having count(*) > 0
    union all
    select
        'contact_person' as entity,
        format(
            '{} contact row(s) have no contact_id, so Chaser cannot match them; they were not '
            || 'sent ({}).',
            count(*),
            string_agg(
                format(
                    '{} {} of customer {}',
                    coalesce(contact_first_name, ''),
                    coalesce(contact_last_name, ''),
                    coalesce(customer_id, '(none)')
                ),
                '; '
                order by customer_id, contact_last_name, contact_first_name
            )
        ) as detail,
        'held_back' as severity
    from contact_persons
    where external_id is null
    having count(*) > 0
    union all
    select
        'payment' as entity,
        format(
            '{} payment row(s) have no payment_id, so they cannot be told apart from duplicates; '
            || 'each was counted toward its invoice when the invoice is in the ledger (cash on '
            || 'account without an id cannot be an overpayment): {}.',
            count(*),
            string_agg(
                format(
                    '{} {} at {}{}',
                    coalesce(payment_amount::varchar, '(no amount)'),
                    case
                        when invoice_id is null then 'on account'
                        else 'to invoice ' || invoice_id
                    end,
                    coalesce(strftime(paid_at, '%Y-%m-%d %H:%M:%S'), '(no time)'),
                    case when coalesce(is_reversed, false) then ' (reversed)' else '' end
                ),
                '; '
                order by invoice_id, paid_at, payment_amount
            )
        ) as detail,
        'reported' as severity
    from payments
    where payment_id is null
    having count(*) > 0
    union all
    select
        'allocation' as entity,
        format(
            '{} credit allocation row(s) have no allocation_id, so they cannot be told apart from '
            || 'duplicates; each was counted when its documents are in the ledger and the rules '
            || 'allow: {}.',
            count(*),
            string_agg(
                format(
                    '{} from {} to invoice {} at {}{}',
                    coalesce(allocation_amount::varchar, '(no amount)'),
                    coalesce(replace(source_kind, '_', ' ') || ' ' || source_id, 'no source'),
                    coalesce(invoice_id, '(refund)'),
                    coalesce(strftime(allocated_at, '%Y-%m-%d %H:%M:%S'), '(no time)'),
                    case
                        when is_withdrawn then ' (reversed)'
                        when ignore_reason_code is not null
                            then ' (ignored: ' || ignore_reason_code || ')'
                        else ''
                    end
                ),
                '; '
                order by source_id, invoice_id, allocated_at, allocation_amount
            )
        ) as detail,
        'reported' as severity
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
        -- Chaser holds an older version of a row now held back (counted by the data-lag check)
        'stale_in_chaser' as severity
    from stale_in_chaser
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'held_back' as severity
    from duplicate_rejections
    union all
    select
        entity,
        cast(null as varchar) as document_key,
        'missing_key' as reason_code,
        detail,
        severity
    from missing_keys
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        -- reported: sent (or ignored) as the contract says, but worth a look
        'reported' as severity
    from (
        select entity, document_key, reason_code, detail from customer_reports
        union all
        select entity, document_key, reason_code, detail from contact_person_reports
        union all
        select entity, document_key, reason_code, detail from invoice_reports
        union all
        select entity, document_key, reason_code, detail from credit_note_reports
        union all
        select entity, document_key, reason_code, detail from overpayment_reports
        union all
        select entity, document_key, reason_code, detail from cash_without_surplus_reports
    ) as reports
    union all
    select
        entity,
        document_key,
        'customer_held_back' as reason_code,
        detail,
        'reported' as severity
    from customer_held_back
    union all
    select
        entity,
        document_key,
        'deleted_in_ledger' as reason_code,
        detail,
        'reported' as severity
    from withdrawals
    union all
    select
        entity,
        document_key,
        reason_code,
        detail,
        'reported' as severity
    from orphans
),

final as (
    select
        entity,
        -- a row with no key at all is still listed, under a visible placeholder
        coalesce(document_key, '(missing)') as key,
        reason_code,
        -- format() gives NULL when any value is NULL: a row is never left without words
        coalesce(
            detail,
            format(
                '{} {}: {} (a value needed to describe it is missing).',
                replace(entity, '_', ' '),
                coalesce(document_key, '(missing)'),
                replace(reason_code, '_', ' ')
            )
        ) as detail,
        severity
    from rejections
    order by entity, key, reason_code
)

select * from final
