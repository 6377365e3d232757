insert into ledger.payments
select
    payment_id,
    invoice_id,
    money(cents) as amount,
    paid_at,
    is_reversed,
    paid_at as updated_at,
    customer_id,
    currency_code
from pay_rows
order by i, seq
