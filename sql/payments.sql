-- Extract query for the ledger contract's `payments` table (see LEDGER_CONTRACT.md).
--
-- This file is the one place to map YOUR warehouse onto the contract: edit the FROM clause and the
-- column expressions so the query returns exactly these columns, names and types (money as
-- DECIMAL(18,2), timestamps in UTC). It runs against CHASER_WAREHOUSE_URL (DuckDB or PostgreSQL).
--
-- Keep the `updated_at > $1::timestamp` filter: the pipeline binds its incremental cursor there
-- (minus the configured overlap; a very old timestamp for the first run or a full refresh).
select
    payment_id,
    invoice_id,
    amount,
    paid_at,
    is_reversed,
    updated_at
from ledger.payments
where updated_at > $1::timestamp
