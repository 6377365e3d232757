-- Each invoice with what has been applied to it, its Chaser status and fully paid time, and why it is held back (NULL when it is sent).
with invoices as not materialized (
    select * from stg_invoices
),

customers as (
    select
        customer_id,
        hold_reason_code as customer_hold_reason_code
    from int_customers
    where customer_id is not null
),

keyless_customers as (
    select
        count(*) as keyless_customer_count,
        string_agg(coalesce(company_name, '(no company name)'), ', ' order by company_name)
            as keyless_company_names
    from int_customers
    where customer_id is null
),

movements as not materialized (
    select * from int_invoice_movements
),

applied as (
    select
        invoice_id,
        sum(movement_amount) as applied_amount,
        -- fully paid at the start of the final stretch in which the running applied sum stayed
        -- at or above the total: the movement right after the last one that left it below (pay
        -- 100, refund -100, pay 100: the second 100); the first movement when none did
        case
            when bool_or(is_below_total)
                then arg_max_null(next_moved_at, movement_rank) filter (where is_below_total)
            else max(moved_at) filter (where movement_rank = 1)
        end as total_reached_at
    from movements
    group by invoice_id
),

amounts as (
    select
        invoices.*,
        coalesce(applied.applied_amount, 0) as applied_amount,
        -- amount_paid = min(applied, total): an overpayment never makes amount_due negative; and
        -- never below 0 (refunds beyond what was paid), so amount_due never exceeds the total
        greatest(least(coalesce(applied.applied_amount, 0), invoices.total_amount), 0)
            as paid_amount,
        applied.total_reached_at,
        customers.customer_id as known_customer_id,
        customers.customer_hold_reason_code,
        keyless_customers.keyless_customer_count,
        keyless_customers.keyless_company_names
    from invoices
    left join applied
        on invoices.invoice_id = applied.invoice_id
    left join customers
        on invoices.customer_id = customers.customer_id
    cross join keyless_customers
),

statuses as (
    select
        *,
        -- amount_due = total - amount_paid, exact in DECIMAL(18,2)
        total_amount - paid_amount as due_amount,
        case
            -- removed from the ledger: sent once more as DELETED, so Chaser stops chasing it
            when is_deleted then 'DELETED'
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
            when
                invoice_status = 'PAID'
                -- a time Chaser cannot write (outside years 1-9999) is no fully paid date
                -- (reported as fully_paid_date_unknown)
                and total_reached_at between timestamp '0001-01-01' and timestamp '9999-12-31'
                then total_reached_at
        end as fully_paid_at,
        -- the first rule an invoice breaks holds it back before the mart: every blocking check
        -- on chaser_invoices guards a rule held here. A customer that is held back does not hold
        -- back its invoices: the sync sends them while Chaser already holds the customer.
        case
            when invoice_id is null then 'missing_key'
            when invoice_number is null then 'missing_invoice_number'
            when issue_date is null then 'missing_issue_date'
            when due_date is null then 'missing_due_date'
            -- Chaser dates have four-digit years
            when
                issue_date not between date '0001-01-01' and date '9999-12-31'
                or due_date not between date '0001-01-01' and date '9999-12-31'
                then 'date_out_of_range'
            when invoice_status is null then 'unknown_status'
            -- the currency must be an ISO 4217 code
            when currency_code is null or not chaser_is_iso4217(currency_code)
                then 'invalid_currency'
            when total_amount is null then 'missing_total'
            when total_amount < 0 then 'negative_total'
            when customer_id is null then 'missing_customer_id'
            -- a customer the ledger does not hold can be in no mart: the relationship contract
            when known_customer_id is null and keyless_customer_count > 0
                then 'customer_key_missing'
            when known_customer_id is null then 'unknown_customer'
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
        is_deleted,
        deleted_at,
        duplicate_row_count,
        customer_hold_reason_code,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then 'invoice_id'
            when 'missing_invoice_number' then 'invoice_number'
            when 'missing_issue_date' then 'issue_date'
            when 'missing_due_date' then 'due_date'
            when 'date_out_of_range' then
                case
                    when issue_date not between date '0001-01-01' and date '9999-12-31'
                        then 'issue_date'
                    else 'due_date'
                end
            when 'unknown_status' then 'status'
            when 'invalid_currency' then 'currency_code'
            when 'missing_total' then 'total'
            when 'negative_total' then 'total'
            else 'customer_id'
        end as hold_field,
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
            when 'date_out_of_range' then format(
                'Invoice {} ({}) has issue date {} and due date {}; Chaser only takes years 1 to '
                || '9999, so it was not sent.',
                invoice_id,
                invoice_number,
                issue_date::varchar,
                due_date::varchar
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
            when 'missing_customer_id' then format(
                'Invoice {} ({}) names no customer; it was not sent.', invoice_id, invoice_number
            )
            when 'customer_key_missing' then format(
                'Invoice {} ({}) names customer {}, which no customer row with a customer_id is; '
                || 'the ledger has {} customer row(s) without a customer_id ({}), which may be '
                || 'it: give that row its id. The invoice was not sent.',
                invoice_id,
                invoice_number,
                customer_id,
                keyless_customer_count,
                keyless_company_names
            )
            when 'unknown_customer' then format(
                'Invoice {} ({}) names customer {}, which is not in the ledger; it was not sent.',
                invoice_id,
                invoice_number,
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
