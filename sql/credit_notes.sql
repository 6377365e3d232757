-- Extract query for the ledger contract's `credit_notes` table (see LEDGER_CONTRACT.md).
--
-- This file is the one place to map YOUR warehouse onto the contract: edit the FROM clause and the
-- column expressions so the query returns exactly these columns, names and types (money as
-- DECIMAL(18,2), timestamps in UTC). It runs against CHASER_WAREHOUSE_URL (DuckDB or PostgreSQL).
--
-- Keep the filter `updated_at > $1::timestamp or updated_at is null`: the pipeline binds its
-- incremental cursor there (minus the configured overlap; a very old timestamp for the first run,
-- a full comparison, and the key-set check that finds rows deleted from the ledger). A row with
-- no updated_at is read on every run and reported, never lost.
select
    credit_note_id,
    credit_note_number,
    customer_id,
    status,
    currency_code,
    total,
    issue_date,
    updated_at
from ledger.credit_notes
where updated_at > $1::timestamp or updated_at is null
