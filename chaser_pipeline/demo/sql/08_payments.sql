-- The payments of one range of invoices [lo, hi); orphans and cash on account are numbered
-- after the invoices (i beyond n_invoices), so the last range holds them. Payment ids continue
-- from the ranges before (pay_offset).
create or replace temp table pay_rows as
with pieces as (
    select *, unnest(generate_series(1, k)) as m
    from inv_plan
    where profile <> 'none'
),
raw as (
    select
        i,
        m as seq,
        invoice_id,
        k,
        profile,
        pay_cents,
        total_cents,
        created_at,
        pay_window_secs,
        case
            when profile = 'float_cents' then [10, 20][m]
            when profile = 'float_pounds' then [10010, 20020][m]
            when profile = 'bounced_then_paid' then total_cents
            -- Paid, refunded in full (a negative payment), paid again: fully paid at the last.
            when profile = 'refund_then_paid' then [total_cents, -total_cents, total_cents][m]
            when profile = 'overpaid' then
                case when m = 1 then total_cents
                     else greatest(1, floor(total_cents * (0.01 + 0.99 * u('p.over', i))))::bigint
                end
            when m < k then floor(pay_cents / k * (0.6 + 0.4 * u2('p.piece', i, m)))::bigint
            else 0
        end as raw_cents,
        profile = 'bounced_then_paid' and m = 1 as is_reversed,
        (m - 1 + u2('p.when', i, m)) / k as position
    from pieces
),
amounted as (
    select
        * exclude (raw_cents),
        case
            when profile in ('float_cents', 'float_pounds', 'bounced_then_paid', 'overpaid',
                             'refund_then_paid')
                then raw_cents
            when seq = k then pay_cents - sum(raw_cents) over (partition by i)
            else raw_cents
        end as cents
    from raw
),
timed as (
    select
        i,
        seq,
        invoice_id,
        cents,
        is_reversed,
        created_at + secs(3600 + position * (pay_window_secs - 7200)) as paid_at,
        profile
    from amounted
),
bounced as (
    -- Now and then a first payment bounces: the same amount, earlier, reversed.
    select i, 0 as seq, invoice_id, cents, true as is_reversed,
           created_at + secs(1800 + 0.5 * epoch(paid_at - created_at)) as paid_at, profile
    from timed
    join inv_base using (i, invoice_id)
    where seq = 1 and profile in ('partial', 'full') and u('p.bounce', i) < 0.05
),
orphans as (
    -- Payments against invoices the extract never saw.
    select
        getvariable('n_invoices') + i as i,
        1 as seq,
        format('INV-{:07d}', getvariable('n_invoices') + 1 + ui('p.orphan', i, 1000)) as invoice_id,
        100 + ui('p.orphanamount', i, 100000) as cents,
        false as is_reversed,
        timestamp '2023-01-02' + secs(u('p.orphanwhen', i) * 120000000) as paid_at,
        'orphan' as profile
    from range(1, greatest(1, getvariable('n_invoices') // 200) + 1) t(i)
    where getvariable('n_invoices') + i >= getvariable('lo')
      and getvariable('n_invoices') + i < getvariable('hi')
),
on_account_funding as (
    -- Cash received on account before the invoice it later pays (09_cash_applications.sql);
    -- half the time it is more than the invoice, and the rest stays on account.
    select
        i,
        -1 as seq,
        null as invoice_id,
        total_cents + case
            when u('p.extra', i) < 0.5 then 0
            else greatest(1, floor(total_cents * 0.2 * u('p.extra2', i)))::bigint
        end as cents,
        false as is_reversed,
        created_at - secs(86400 * (1 + ui('p.early', i, 20))) as paid_at,
        'on_account' as profile
    from inv_plan
    where scenario = 'paid_from_account'
),
on_account_only as (
    -- Cash on account not applied to anything yet: a prepayment waiting for its invoice.
    select
        2 * getvariable('n_invoices') + i as i,
        1 as seq,
        null as invoice_id,
        1000 + ui('p.oaamount', i, 500000) as cents,
        false as is_reversed,
        timestamp '2023-01-05' + secs(u('p.oawhen', i) * 120000000) as paid_at,
        'on_account' as profile
    from range(1, greatest(2, getvariable('n_invoices') // 300) + 1) t(i)
    where 2 * getvariable('n_invoices') + i >= getvariable('lo')
      and 2 * getvariable('n_invoices') + i < getvariable('hi')
),
all_payments as (
    select * from timed
    union all select * from bounced
    union all select * from orphans
    union all select * from on_account_funding
    union all select * from on_account_only
)
select
    all_payments.*,
    format(
        'PAY-{:08d}',
        getvariable('pay_offset')
            + row_number() over (order by all_payments.i, all_payments.seq)
    )
        as payment_id,
    -- The optional columns: whose money, in which currency (the invoice's, for a payment to one).
    case
        when all_payments.i > 2 * getvariable('n_invoices') then
            format('C-{:06d}', 1 + ui('p.oacustomer', all_payments.i, getvariable('n_customers')))
        else inv.customer_id
    end as customer_id,
    case
        when all_payments.i > 2 * getvariable('n_invoices') then
            pick(['GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP',
                  'GBP', 'GBP', 'GBP', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'AUD', 'CAD'],
                 'c.currency', 1 + ui('p.oacustomer', all_payments.i, getvariable('n_customers')))
        else inv.currency_code
    end as currency_code
from all_payments
-- orphans point at no invoice the extract sees: they name no customer either
left join inv_base inv
    on inv.i = all_payments.i and all_payments.i <= getvariable('n_invoices')
