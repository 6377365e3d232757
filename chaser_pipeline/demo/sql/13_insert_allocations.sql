insert into ledger.credit_allocations
with all_rows as (
    select 0 as kind, j, seq, credit_note_id, null as payment_id, invoice_id, cents,
           allocated_at, is_reversed
    from alloc_rows
    union all
    select 1, i, 1, null, payment_id, invoice_id, cents, allocated_at, false
    from cash_rows
)
select
    format('CA-{:07d}', row_number() over (order by kind, j, seq)) as allocation_id,
    credit_note_id,
    invoice_id,
    money(cents) as amount,
    allocated_at,
    is_reversed,
    allocated_at as updated_at,
    payment_id
from all_rows
order by kind, j, seq
