insert into ledger.invoices
with events as (
    select invoice_id, max(paid_at) as last_at from pay_rows group by all
    union all
    select invoice_id, max(allocated_at) from alloc_rows where invoice_id is not null group by all
    union all
    select invoice_id, max(allocated_at) from cash_rows group by all
),
last_event as (
    select invoice_id, max(last_at) as last_at from events group by all
),
current_rows as (
    select
        p.*,
        case
            when lifecycle = 'draft' then pick(['DRAFT', 'DRAFT', 'Draft', 'draft'], 'i.st', i)
            when lifecycle = 'submitted' then pick(['SUBMITTED', 'submitted'], 'i.st', i)
            when lifecycle = 'voided' then pick(['VOIDED', 'VOIDED', 'voided'], 'i.st', i)
            when lifecycle = 'deleted' then 'DELETED'
            -- The source says PAID although money is still due.
            when scenario = 'paid_status_money_due' then pick(['PAID', 'Paid'], 'i.st', i)
            when profile in ('full', 'float_cents', 'float_pounds', 'overpaid',
                             'bounced_then_paid', 'refund_then_paid')
                 or scenario = 'paid_from_account'
                 or (scenario = 'credited' and profile = 'rest')
                 or (scenario = 'credited' and credit_cents >= total_cents)
                 or (scenario = 'zero_total' and u('i.zeropaid', i) < 0.5)
                then pick(['PAID', 'PAID', 'Paid', 'paid'], 'i.st', i)
            else pick(['AUTHORISED', 'AUTHORISED', 'AUTHORISED', 'authorised', 'Authorised'],
                      'i.st', i)
        end as status,
        greatest(created_at, coalesce(e.last_at, created_at)) as updated_at,
        2 as version
    from inv_plan p
    left join last_event e using (invoice_id)
),
versions as (
    select i, version, invoice_id, invoice_number, customer_id, status, currency_code,
           sub_total, total, issue_date, due_date, updated_at
    from current_rows
    union all
    -- A duplicate key: an earlier draft of the same invoice, for less, never cleaned up.
    select i, 1, invoice_id, invoice_number, customer_id, 'DRAFT', currency_code,
           round(sub_total * 0.9, 2), round(round(sub_total * 0.9, 2) * 1.2, 2),
           issue_date, due_date, true_issue_date::timestamp + to_seconds(7 * 3600)
    from current_rows
    where scenario = 'duplicate_key'
)
select * exclude (i, version) from versions order by i, version
