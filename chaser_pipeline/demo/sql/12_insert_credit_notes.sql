insert into ledger.credit_notes
with last_event as (
    select credit_note_id, max(allocated_at) as last_at from alloc_rows group by all
),
versions as (
    select
        j,
        2 as version,
        cn.credit_note_id,
        credit_note_number,
        customer_id,
        status,
        currency_code,
        money(total_cents) as total,
        issue_date,
        greatest(created_at, coalesce(e.last_at, created_at)) as updated_at
    from cn_base cn
    left join last_event e using (credit_note_id)
    union all
    select j, 1, credit_note_id, credit_note_number, customer_id, 'DRAFT', currency_code,
           money(total_cents), issue_date, issue_date::timestamp + to_seconds(8 * 3600)
    from cn_base
    where scenario = 'duplicate_key'
)
select * exclude (j, version) from versions order by j, version
