insert into ledger.payments
select
    format('PAY-{:08d}', row_number() over (order by i, seq)) as payment_id,
    invoice_id,
    money(cents) as amount,
    paid_at,
    is_reversed,
    paid_at as updated_at
from pay_rows
order by i, seq
