insert into ledger.customers
select * exclude (i, version, domain) from customer_rows order by i, version
