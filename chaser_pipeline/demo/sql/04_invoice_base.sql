-- One range of invoices [lo, hi) (the generator runs it per range, so memory stays bounded),
-- or with credited_only every credited invoice (what the credit notes need) and nothing else.
create or replace temp table inv_base as
with base as (
    select
        i,
        bucket(i, 1000) as cb,
        1 + floor(getvariable('n_customers') * pow(u('i.cust', i), 1.6))::bigint as customer_ix,
        date '2023-01-01' + ui('i.issue', i, 1415)::int as true_issue_date
    from range(getvariable('lo'), least(getvariable('hi'), getvariable('n_invoices') + 1)) t(i)
    where not getvariable('credited_only') or bucket(i, 1000) >= 900
),
scenarios as (
    select
        *,
        case
            when cb < 10 then 'unknown_customer'
            when cb < 20 then 'bad_currency'
            when cb < 25 then 'negative_total'
            when cb < 30 then 'missing_number'
            when cb < 35 then 'missing_issue_date'
            when cb < 45 then 'duplicate_key'
            when cb < 55 then 'zero_total'
            when cb < 60 then 'float_cents'
            when cb < 65 then 'float_pounds'
            when cb < 75 then 'paid_status_money_due'
            when cb < 90 then 'overpaid'
            when cb < 100 then 'bounced_then_paid'
            when cb < 105 then 'refund_then_paid'
            when cb < 110 then 'before_history'
            when cb < 115 then 'held_customer_paid'
            when cb < 125 then 'paid_from_account'
            when cb >= 900 then 'credited'
            else 'normal'
        end as scenario,
        -- Amounts spread log-uniformly from 10.00 to 20,000.00 before VAT.
        floor(exp(ln(1000) + u('i.amount', i) * (ln(2000000) - ln(1000))))::bigint as random_cents
    from base
),
nameless_customers as (
    -- Customers whose company name is missing (held back): some pay an invoice in full.
    select list(i order by i) as ixs
    from customer_rows
    where version = 1 and coalesce(company_name, '') = ''
),
placed as (
    select
        * exclude (ixs) replace (
            case
                when scenario = 'held_customer_paid' and len(ixs) > 0
                    then ixs[1 + ui('i.held', i, greatest(len(ixs), 1))]
                else customer_ix
            end as customer_ix,
            -- Open invoices issued before the first month of history (2023-01).
            case
                when scenario = 'before_history' then date '2022-12-01' + ui('i.early', i, 31)::int
                else true_issue_date
            end as true_issue_date
        )
    from scenarios
    cross join nameless_customers
),
amounts as (
    select
        *,
        case scenario
            when 'zero_total' then 0
            when 'float_cents' then 25
            when 'float_pounds' then 25025
            when 'negative_total' then -random_cents
            else random_cents
        end as sub_cents
    from placed
)
select
    i,
    cb,
    scenario,
    customer_ix,
    format('INV-{:07d}', i) as invoice_id,
    case
        when scenario = 'missing_number' then case when cb < 27 then '' else null end
        -- Invoice numbers are not unique: some reuse a recent invoice's number.
        when i > 50 and u('i.numreuse', i) < 0.02 then
            format('SI-{:06d}', 100000 + i - 1 - ui('i.numfrom', i, 50))
        else format('SI-{:06d}', 100000 + i)
    end as invoice_number,
    case
        when scenario = 'unknown_customer' then
            format('C-{:06d}', getvariable('n_customers') + 1 + ui('i.unknown', i, 1000))
        else format('C-{:06d}', customer_ix)
    end as customer_id,
    case
        when scenario = 'bad_currency' then ['ZZZ', 'EURO', '', 'XXY'][1 + cb % 4]
        -- A customer is billed in one currency, mostly GBP.
        else pick(['GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP',
                   'GBP', 'GBP', 'GBP', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'AUD', 'CAD'],
                  'c.currency', customer_ix)
    end as currency_code,
    money(sub_cents) as sub_total,
    -- VAT at 20%, rounded to cents in decimal arithmetic: never a float.
    round(money(sub_cents) * 1.2, 2)::decimal(18, 2) as total,
    (round(money(sub_cents) * 1.2, 2) * 100)::bigint as total_cents,
    true_issue_date,
    case when scenario = 'missing_issue_date' then null else true_issue_date end as issue_date,
    true_issue_date + pick([14, 30, 30, 60], 'i.terms', i) as due_date,
    -- Lifecycle outside the payment story: drafts, submitted, voided and deleted documents.
    case
        when scenario <> 'normal' then 'live'
        when u('i.life', i) < 0.03 then 'draft'
        when u('i.life', i) < 0.05 then 'submitted'
        when u('i.life', i) < 0.07 then 'voided'
        when u('i.life', i) < 0.08 then 'deleted'
        else 'live'
    end as lifecycle,
    least(date_diff('day', true_issue_date, date '2026-11-19'), 120) * 86400 as pay_window_secs,
    true_issue_date::timestamp + secs(8 * 3600 + u('i.created', i) * 3600) as created_at
from amounts
