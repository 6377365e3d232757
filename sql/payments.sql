-- Extract query for the ledger contract's `payments` table (see LEDGER_CONTRACT.md).
--
-- This file is the one place to map YOUR warehouse onto the contract: edit the FROM clause and the
-- column expressions so the query returns exactly these columns, names and types (money as
-- DECIMAL(18,2), timestamps in UTC). It runs against CHASER_WAREHOUSE_URL (DuckDB or PostgreSQL).
--
-- Keep the filter `updated_at > $1::timestamp or updated_at is null`: the pipeline binds its
-- incremental cursor there (minus the configured overlap; a very old timestamp for the first run,
-- a full comparison, and the key-set check that finds rows deleted from the ledger). A row with
-- no updated_at is read on every run and reported, never lost.
--
-- Optional: customer_id and currency_code, whose money a payment with no invoice_id is (cash
-- received on account, which becomes a Chaser overpayment). Delete both lines if your ledger has
-- no such payments: they then land as NULL.
select
    payment_id,
    invoice_id,
    amount,
    paid_at,
    is_reversed,
    customer_id,
    currency_code,
    updated_at
from ledger.payments
where updated_at > $1::timestamp or updated_at is null
