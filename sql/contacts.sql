-- Extract query for the ledger contract's optional `contacts` table (see LEDGER_CONTRACT.md,
-- "Recipients and unapplied cash"): the people at a customer, beyond its own e-mail address, whom
-- Chaser reminds. Each becomes a contact person of its customer; an archived or deleted contact is
-- archived in Chaser.
--
-- This file is the one place to map YOUR warehouse onto the contract: edit the FROM clause and the
-- column expressions so the query returns exactly these columns, names and types (timestamps in
-- UTC). It runs against CHASER_WAREHOUSE_URL (DuckDB or PostgreSQL). If your ledger has no
-- contacts, delete this file: landing.contacts then stays empty.
--
-- Keep the filter `updated_at > $1::timestamp or updated_at is null`: the pipeline binds its
-- incremental cursor there (minus the configured overlap; a very old timestamp for the first run,
-- a full comparison, and the key-set check that finds rows deleted from the ledger). A row with
-- no updated_at is read on every run and reported, never lost.
select
    contact_id,
    customer_id,
    first_name,
    last_name,
    email,
    phone,
    mobile,
    is_archived,
    updated_at
from ledger.contacts
where updated_at > $1::timestamp or updated_at is null
