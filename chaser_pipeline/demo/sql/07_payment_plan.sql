create or replace temp table inv_plan as
with credit_applied as (
    -- The ledger's own view: non-reversed allocations from credit notes not VOIDED or DELETED.
    -- Credit the contract does not count (a DRAFT note, another customer's, another currency's)
    -- leaves the invoice with money due that the ledger thinks is paid.
    select a.invoice_id, sum(a.cents) as cents
    from alloc_rows a
    join cn_base cn on cn.credit_note_id = a.credit_note_id
    where not a.is_reversed
      and upper(cn.status) not in ('VOIDED', 'DELETED')
      and a.invoice_id is not null
    group by all
),
profiled as (
    select
        inv.*,
        coalesce(ca.cents, 0) as credit_cents,
        u('i.profile', i) as up,
        true_issue_date >= date '2026-09-15' as recent
    from inv_base inv
    left join credit_applied ca using (invoice_id)
)
select
    *,
    case
        when lifecycle <> 'live' or scenario in ('negative_total', 'zero_total') then 'none'
        when scenario in ('float_cents', 'float_pounds', 'overpaid', 'bounced_then_paid',
                          'refund_then_paid')
            then scenario
        when scenario = 'held_customer_paid' then 'full'
        -- unpaid before the history start; paid from cash on account (09_cash_applications.sql)
        when scenario in ('before_history', 'paid_from_account') then 'none'
        when scenario = 'paid_status_money_due' then 'partial'
        when scenario = 'credited' then
            case when credit_cents >= total_cents or up < 0.3 then 'none' else 'rest' end
        when up < 0.12 or (recent and up < 0.55) then 'none'
        when up < 0.37 then 'partial'
        else 'full'
    end as profile,
    case
        when scenario in ('float_cents', 'float_pounds', 'overpaid', 'bounced_then_paid') then 2
        when scenario = 'refund_then_paid' then 3
        when scenario = 'credited' then 1 + ui('i.k', i, 2)
        when up < 0.37 then 1 + ui('i.k', i, 3)
        else 1 + ui('i.k', i, 5)
    end as k,
    case
        when scenario = 'credited' then total_cents - credit_cents
        when scenario = 'held_customer_paid' then total_cents
        when up < 0.37 or scenario = 'paid_status_money_due' then
            greatest(1, floor(total_cents * (0.2 + 0.6 * u('i.part', i))))::bigint
        else total_cents
    end as pay_cents
from profiled
