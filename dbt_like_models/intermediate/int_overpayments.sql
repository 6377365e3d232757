-- Each payment holding unapplied cash (received on account, or the surplus of a payment that took an invoice past its total), with what is left of it, its Chaser status, and why it is held back (NULL when it is sent).
with payments as (
    select * from stg_payments
    -- money without a payment_id cannot be an overpayment (chaser_rejections reports it)
    where payment_id is not null
),

invoices as (
    select * from int_invoice_balances
    where invoice_id is not null
),

movements as not materialized (
    select * from int_invoice_movements
),

allocations as not materialized (
    select * from int_allocations
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

chaser_holdings as (
    select
        key as payment_id
    from chaser_sync.holding_keys
    where object = 'overpayments'
),

surplus_receipts as (
    select
        invoice_id,
        movement_kind,
        movement_id,
        surplus_amount,
        coalesce(
            sum(surplus_amount) over (
                partition by invoice_id
                order by movement_rank
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as earlier_surplus_amount,
        sum(surplus_amount) over (partition by invoice_id) as invoice_surplus_received_amount
    from movements
    where surplus_amount > 0
),

surplus_consumed as (
    select
        surplus_receipts.*,
        -- surplus taken back on the invoice since (refunds, which are negative payments): what
        -- went past the total less what is past it now, taken from the earliest surplus first
        greatest(
            invoice_surplus_received_amount
            - greatest(invoices.applied_amount - invoices.total_amount, 0),
            0
        ) as invoice_consumed_amount
    from surplus_receipts
    inner join invoices
        on surplus_receipts.invoice_id = invoices.invoice_id
),

surplus_payments as (
    select
        movement_id as payment_id,
        invoice_id,
        -- total = the unapplied amount when received
        surplus_amount as received_amount,
        least(surplus_amount, greatest(invoice_consumed_amount - earlier_surplus_amount, 0))
            as consumed_amount
    from surplus_consumed
    -- a credit allocation past the total is no cash: the credit note keeps its own balance
    where movement_kind = 'payment' and movement_id is not null
),

applied_later as (
    select
        source_id as payment_id,
        -- unapplied cash applied later to an invoice (or refunded): an allocation that counts
        sum(allocation_amount) as applied_amount
    from allocations
    where is_counted and source_kind = 'payment'
    group by source_id
),

candidates as (
    select
        payments.payment_id,
        payments.invoice_id,
        case
            -- money on account: the payment's own optional columns say whose, in which currency
            when payments.invoice_id is null then 'on_account'
            when surplus_payments.payment_id is not null then 'surplus'
            -- Chaser holds an overpayment whose cash is no longer unapplied (the payment was
            -- reversed, removed, moved, or the invoice's total grew): withdrawn
            else 'withdrawn'
        end as overpayment_kind,
        case
            when payments.invoice_id is null then payments.customer_id
            else invoices.customer_id
        end as customer_id,
        case
            when payments.invoice_id is null then payments.currency_code
            else invoices.currency_code
        end as currency_code,
        payments.paid_at,
        payments.payment_amount,
        coalesce(payments.is_reversed, false) as is_reversed,
        payments.is_deleted,
        payments.deleted_at,
        surplus_payments.received_amount as surplus_received_amount,
        coalesce(surplus_payments.consumed_amount, 0) as consumed_amount,
        coalesce(applied_later.applied_amount, 0) as applied_amount
    from payments
    left join surplus_payments
        on payments.payment_id = surplus_payments.payment_id
    left join invoices
        on payments.invoice_id = invoices.invoice_id
    left join applied_later
        on payments.payment_id = applied_later.payment_id
    left join chaser_holdings
        on payments.payment_id = chaser_holdings.payment_id
    where
        payments.invoice_id is null
        or surplus_payments.payment_id is not null
        or chaser_holdings.payment_id is not null
),

amounts as (
    select
        candidates.*,
        case
            when overpayment_kind = 'on_account' then payment_amount
            when overpayment_kind = 'surplus' then surplus_received_amount
            -- nothing is unapplied any more
            else 0.00
        end::decimal(18, 2) as received_amount,
        customers.customer_id as known_customer_id,
        customers.customer_hold_reason_code,
        keyless_customers.keyless_customer_count,
        keyless_customers.keyless_company_names
    from candidates
    left join customers
        on candidates.customer_id = customers.customer_id
    cross join keyless_customers
),

statuses as (
    select
        *,
        case
            -- reversed or removed money counts as never received: nothing remains of it
            when is_reversed or is_deleted or overpayment_kind = 'withdrawn' then 0.00
            -- remaining_credit = what was unapplied, less refunds on its invoice and what was
            -- applied later; over-application is reported, never sent below 0
            else greatest(received_amount - consumed_amount - applied_amount, 0)
        end::decimal(18, 2) as remaining_amount,
        case
            -- removed from the ledger: sent once more as DELETED
            when is_deleted then 'DELETED'
            -- a reversed payment, or cash no longer unapplied: the overpayment is void
            when is_reversed or overpayment_kind = 'withdrawn' then 'VOIDED'
            -- ACTIVE while credit remains, PAID once it is all used
            when received_amount - consumed_amount - applied_amount > 0 then 'ACTIVE'
            else 'PAID'
        end as overpayment_status
    from amounts
),

held as (
    select
        *,
        -- the first rule an overpayment breaks holds it back before the mart; a held-back
        -- customer does not hold back its overpayments (the sync waits for the customer)
        case
            when paid_at is null then 'missing_paid_at'
            -- Chaser dates have four-digit years
            when paid_at not between timestamp '0001-01-01' and timestamp '9999-12-31'
                then 'date_out_of_range'
            -- the currency must be an ISO 4217 code (on account: payments.currency_code)
            when currency_code is null or not chaser_is_iso4217(currency_code)
                then 'invalid_currency'
            when received_amount is null then 'missing_total'
            -- money going out on account with nothing to refund: not an overpayment
            when received_amount < 0 then 'negative_total'
            -- more cash given back than applied (negative allocations): the unapplied cash would
            -- exceed what was received (a withdrawn overpayment has none left, and still goes)
            when remaining_amount > received_amount then 'negative_allocated'
            when customer_id is null then 'missing_customer_id'
            when known_customer_id is null and keyless_customer_count > 0
                then 'customer_key_missing'
            when known_customer_id is null then 'unknown_customer'
        end as hold_reason_code
    from statuses
),

final as (
    select
        payment_id as overpayment_id,
        invoice_id,
        overpayment_kind,
        customer_id,
        currency_code,
        paid_at,
        received_amount,
        consumed_amount,
        applied_amount,
        remaining_amount,
        overpayment_status,
        is_deleted,
        deleted_at,
        customer_hold_reason_code,
        hold_reason_code,
        case hold_reason_code
            when 'missing_paid_at' then 'paid_at'
            when 'date_out_of_range' then 'paid_at'
            when 'invalid_currency' then 'currency_code'
            when 'missing_total' then 'amount'
            when 'negative_total' then 'amount'
            when 'negative_allocated' then 'amount'
            else 'customer_id'
        end as hold_field,
        case hold_reason_code
            when 'missing_paid_at' then format(
                'Payment {} of {} has no paid_at, so Chaser cannot date its unapplied cash; the '
                || 'overpayment was not sent.',
                payment_id,
                coalesce(payment_amount::varchar, '(no amount)')
            )
            when 'date_out_of_range' then format(
                'Payment {} was paid at {}; Chaser only takes years 1 to 9999, so the overpayment '
                || 'was not sent.',
                payment_id,
                paid_at::varchar
            )
            when 'invalid_currency' then format(
                'Payment {} of {} {}has currency {}, which is not an ISO 4217 code; the '
                || 'overpayment was not sent.',
                payment_id,
                coalesce(payment_amount::varchar, '(no amount)'),
                case when invoice_id is null then 'received on account ' else '' end,
                coalesce(currency_code, '(none)')
            )
            when 'missing_total' then format(
                'Payment {} received on account has no amount; the overpayment was not sent.',
                payment_id
            )
            when 'negative_total' then format(
                'Payment {} of {} {} on account is negative, and no payment says which cash it '
                || 'gives back; the overpayment was not sent.',
                payment_id,
                payment_amount::varchar,
                currency_code
            )
            when 'negative_allocated' then format(
                'Payment {} of {} {} has {} applied later in all, less than nothing, so its '
                || 'unapplied cash would exceed what was received; the overpayment was not sent.',
                payment_id,
                received_amount::varchar,
                currency_code,
                applied_amount::varchar
            )
            when 'missing_customer_id' then format(
                'Payment {} of {} was received on account but names no customer (payments.'
                || 'customer_id); the overpayment was not sent.',
                payment_id,
                coalesce(payment_amount::varchar, '(no amount)')
            )
            when 'customer_key_missing' then format(
                'Payment {} belongs to customer {}, which no customer row with a customer_id is; '
                || 'the ledger has {} customer row(s) without a customer_id ({}), which may be '
                || 'it: give that row its id. The overpayment was not sent.',
                payment_id,
                customer_id,
                keyless_customer_count,
                keyless_company_names
            )
            when 'unknown_customer' then format(
                'Payment {} was received on account for customer {}, which is not in the ledger; '
                || 'the overpayment was not sent.',
                payment_id,
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
