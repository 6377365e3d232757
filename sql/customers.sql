-- Extract query for the ledger contract's `customers` table (see LEDGER_CONTRACT.md).
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
    customer_id,
    company_name,
    contact_first_name,
    contact_last_name,
    email,
    phone,
    mobile,
    address_line1,
    address_line2,
    city,
    region,
    postal_code,
    country,
    is_archived,
    updated_at
from ledger.customers
where updated_at > $1::timestamp or updated_at is null
