create temp table cn_base as
with credited as (
    select i, row_number() over (order by i) as j
    from inv_base
    where scenario = 'credited'
),
base as (
    select
        j,
        bucket(j, 100) as cb,
        1 + ui('n.cust', j, getvariable('n_customers')) as customer_ix
    from range(1, getvariable('n_credit_notes') + 1) t(j)
),
scenarios as (
    select
        base.*,
        case
            when base.cb < 2 then 'unknown_customer'
            when base.cb < 3 then 'bad_currency'
            when base.cb < 4 then 'duplicate_key'
            when base.cb < 8 then 'voided_with_allocations'
            when base.cb < 11 then 'draft'
            when base.cb < 12 then 'deleted_with_allocation'
            when base.cb < 16 then 'refund'
            when base.cb < 20 then 'over_allocated'
            when base.cb < 24 then 'reversed_allocation'
            when base.cb < 26 then 'unknown_invoice'
            when base.cb < 28 then 'unknown_credit_note'
            when base.cb < 34 then 'unallocated'
            when base.cb < 60 then 'fully_used'
            when base.cb < 80 then 'partly_used'
            when base.cb < 82 then 'other_currency'
            when base.cb < 83 then 'other_customer'
            when base.cb < 84 then 'draft_allocated'
            when base.cb < 85 then 'negative_total'
            else 'split_with_refund'
        end as scenario,
        inv.invoice_id,
        inv.customer_id as invoice_customer_id,
        inv.customer_ix as invoice_customer_ix,
        inv.currency_code as invoice_currency_code,
        inv.total_cents as invoice_total_cents,
        inv.true_issue_date as invoice_issue_date
    from base
    left join credited using (j)
    left join inv_base inv on inv.i = credited.i
),
shaped as (
    select
        *,
        case
            when invoice_id is null then 1000 + ui('n.amount', j, 200000)
            when scenario = 'negative_total'
                then -greatest(1, floor(invoice_total_cents * (0.05 + 0.45 * u('n.share', j))))::bigint
            -- A credit for the whole invoice now and then, else 5-50% of it.
            when scenario = 'fully_used' and u('n.whole', j) < 0.3 then invoice_total_cents
            else greatest(1, floor(invoice_total_cents * (0.05 + 0.45 * u('n.share', j))))::bigint
        end as total_cents,
        case
            when invoice_id is null then date '2023-01-01' + ui('n.issue', j, 1415)::int
            else least(invoice_issue_date + 1 + ui('n.issue', j, 30)::int, date '2026-11-15')
        end as issue_date
    from scenarios
)
select
    *,
    format('CN-{:07d}', j) as credit_note_id,
    format('CR-{:05d}', 1000 + j) as credit_note_number,
    case
        when scenario = 'unknown_customer' then
            format('C-{:06d}', getvariable('n_customers') + 1 + ui('n.unknown', j, 1000))
        -- Another customer's credit note, allocated to this invoice all the same.
        when scenario = 'other_customer' and invoice_id is not null then
            format('C-{:06d}', invoice_customer_ix % getvariable('n_customers') + 1)
        else coalesce(invoice_customer_id, format('C-{:06d}', customer_ix))
    end as customer_id,
    case
        when scenario = 'bad_currency' then 'ZZZ'
        -- A credit note in another currency, allocated to the invoice all the same.
        when scenario = 'other_currency' and invoice_id is not null then
            case when invoice_currency_code = 'EUR' then 'GBP' else 'EUR' end
        else coalesce(invoice_currency_code,
                      pick(['GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP',
                            'GBP', 'GBP', 'GBP', 'GBP', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'AUD',
                            'CAD'], 'c.currency', customer_ix))
    end as currency_code,
    case scenario
        when 'voided_with_allocations' then pick(['VOIDED', 'voided', 'Voided'], 'n.st', j)
        when 'draft' then case when cb = 10 then 'Submitted'
                               else pick(['DRAFT', 'draft'], 'n.st', j) end
        when 'deleted_with_allocation' then 'DELETED'
        when 'draft_allocated' then pick(['DRAFT', 'draft'], 'n.st', j)
        when 'refund' then pick(['PAID', 'paid', 'Paid'], 'n.st', j)
        when 'split_with_refund' then pick(['PAID', 'paid'], 'n.st', j)
        -- The source may still say AUTHORISED for a fully used credit note.
        when 'fully_used' then pick(['PAID', 'AUTHORISED', 'authorised'], 'n.st', j)
        else pick(['AUTHORISED', 'AUTHORISED', 'AUTHORISED', 'authorised', 'Authorised'],
                  'n.st', j)
    end as status,
    issue_date::timestamp + to_seconds(9 * 3600) as created_at,
    least(date_diff('day', issue_date, date '2026-11-19'), 60) * 86400 as alloc_window_secs
from shaped
