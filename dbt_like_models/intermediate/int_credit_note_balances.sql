-- Each credit note with how much of it has been used, its Chaser status, and why it is held back (NULL when it is sent).
with credit_notes as not materialized (
    select * from stg_credit_notes
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

allocations as not materialized (
    select * from int_allocations
),

allocated as (
    select
        credit_note_id,
        -- allocated = every allocation that counts, cash refunds included; one the invoice side
        -- ignores (another customer, another currency, ...) is ignored here too
        sum(allocation_amount) as allocated_amount
    from allocations
    where is_counted and source_kind = 'credit_note'
    group by credit_note_id
),

amounts as (
    select
        credit_notes.*,
        coalesce(allocated.allocated_amount, 0) as allocated_amount,
        -- remaining_credit = max(total - allocated, 0); over-allocation is reported, not sent
        greatest(credit_notes.total_amount - coalesce(allocated.allocated_amount, 0), 0)
            as remaining_amount,
        customers.customer_id as known_customer_id,
        customers.customer_hold_reason_code,
        keyless_customers.keyless_customer_count,
        keyless_customers.keyless_company_names
    from credit_notes
    left join allocated
        on credit_notes.credit_note_id = allocated.credit_note_id
    left join customers
        on credit_notes.customer_id = customers.customer_id
    cross join keyless_customers
),

statuses as (
    select
        *,
        case
            -- removed from the ledger: sent once more as DELETED, so statements stop showing it
            when is_deleted then 'DELETED'
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
        -- the first rule a credit note breaks holds it back before the mart, row by row: every
        -- blocking check on chaser_credit_notes guards a rule held here, so one bad credit note
        -- never blocks its month. A held-back customer does not hold back its credit notes.
        case
            when credit_note_id is null then 'missing_key'
            when credit_note_number is null then 'missing_credit_note_number'
            when issue_date is null then 'missing_issue_date'
            -- Chaser dates have four-digit years
            when issue_date not between date '0001-01-01' and date '9999-12-31'
                then 'date_out_of_range'
            when credit_note_status is null then 'unknown_status'
            -- the currency must be an ISO 4217 code
            when currency_code is null or not chaser_is_iso4217(currency_code)
                then 'invalid_currency'
            when total_amount is null then 'missing_total'
            when total_amount < 0 then 'negative_total'
            -- more credit given back than used (negative allocations): remaining credit would
            -- exceed the total
            when allocated_amount < 0 then 'negative_allocated'
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
        is_deleted,
        deleted_at,
        duplicate_row_count,
        customer_hold_reason_code,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then 'credit_note_id'
            when 'missing_credit_note_number' then 'credit_note_number'
            when 'missing_issue_date' then 'issue_date'
            when 'date_out_of_range' then 'issue_date'
            when 'unknown_status' then 'status'
            when 'invalid_currency' then 'currency_code'
            when 'missing_total' then 'total'
            when 'negative_total' then 'total'
            when 'negative_allocated' then 'amount'
            else 'customer_id'
        end as hold_field,
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
            when 'date_out_of_range' then format(
                'Credit note {} ({}) has issue date {}; Chaser only takes years 1 to 9999, so it '
                || 'was not sent.',
                credit_note_id,
                credit_note_number,
                issue_date::varchar
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
            when 'negative_total' then format(
                'Credit note {} ({}) has a negative total of {} {}; it was not sent.',
                credit_note_id,
                credit_note_number,
                total_amount::varchar,
                currency_code
            )
            when 'negative_allocated' then format(
                'Credit note {} ({}) for {} {} has {} allocated in all, less than nothing, so its '
                || 'remaining credit would exceed its total; it was not sent.',
                credit_note_id,
                credit_note_number,
                total_amount::varchar,
                currency_code,
                allocated_amount::varchar
            )
            when 'missing_customer_id' then format(
                'Credit note {} ({}) names no customer; it was not sent.',
                credit_note_id,
                credit_note_number
            )
            when 'customer_key_missing' then format(
                'Credit note {} ({}) names customer {}, which no customer row with a customer_id '
                || 'is; the ledger has {} customer row(s) without a customer_id ({}), which may '
                || 'be it: give that row its id. The credit note was not sent.',
                credit_note_id,
                credit_note_number,
                customer_id,
                keyless_customer_count,
                keyless_company_names
            )
            when 'unknown_customer' then format(
                'Credit note {} ({}) names customer {}, which is not in the ledger; '
                || 'it was not sent.',
                credit_note_id,
                credit_note_number,
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
