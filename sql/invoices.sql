-- Extract query for the ledger contract's `invoices` table (see LEDGER_CONTRACT.md).
--
-- This file is the one place to map YOUR warehouse onto the contract: edit the FROM clause and the
-- column expressions so the query returns exactly these columns, names and types (money as
-- DECIMAL(18,2), timestamps in UTC). It runs against CHASER_WAREHOUSE_URL (DuckDB or PostgreSQL).
--
-- Keep the `updated_at > $1::timestamp` filter: the pipeline binds its incremental cursor there
-- (minus the configured overlap; a very old timestamp for the first run or a full refresh).
select
    invoice_id,
    invoice_number,
    customer_id,
    status,
    currency_code,
    sub_total,
    total,
    issue_date,
    due_date,
    updated_at
from ledger.invoices
where updated_at > $1::timestamp
