-- (cash_rows is created empty first; every range of invoices adds its own)
insert into cash_rows
-- Cash received on account applied later: an allocation naming the payment (payment_id) in
-- place of a credit note, paying the invoice in full once it is issued.
select
    inv.i,
    funding.payment_id,
    inv.invoice_id,
    inv.total_cents as cents,
    greatest(funding.paid_at, inv.created_at)
        + secs(3600 + u('ca.when', inv.i) * (inv.pay_window_secs - 7200)) as allocated_at
from inv_plan inv
join pay_rows funding
    on funding.i = inv.i and funding.seq = -1
where inv.scenario = 'paid_from_account'
