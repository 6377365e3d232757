insert into ledger.customers
select * exclude (i, version) from customer_rows order by i, version
