insert into ledger.credit_allocations
select
    format('CA-{:07d}', row_number() over (order by j, seq)) as allocation_id,
    credit_note_id,
    invoice_id,
    money(cents) as amount,
    allocated_at,
    is_reversed,
    allocated_at as updated_at
from alloc_rows
order by j, seq
