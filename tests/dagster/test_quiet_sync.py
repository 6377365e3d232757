"""A quiet day costs an extract, not a Dagster run: the quiet check of `chaser-pipeline sync`.

Contract:
- it stands in for the jobs only after a sync that succeeded, sent nothing and left nothing
  pending, and only for a plain sync (`--always-run`, `--dry-run` and the other options run
  the jobs);
- it starts no Dagster run and sends no request to Chaser, and prints the usual summary;
- it records each extract (with its real figures) and each daily sync asset as a materialization
  without a run, the extract's data version unchanged: the freshness policies count the day and
  nothing downstream looks stale;
- anything a run would plan from that changed runs the jobs: a ledger row, a key deleted from
  the warehouse, the sync state, a setting. A change is landed by the jobs' own extract (which
  reports it), never swallowed by the check; a broken warehouse fails in the jobs, as before.
"""

from __future__ import annotations

import dagster as dg
import pytest

from chaser_pipeline.cli import main
from chaser_pipeline.cli.quiet import QUIET_CHECK
from chaser_pipeline.sync.objects import CUSTOMERS
from tests.support.pipeline import make_pipeline

pytestmark = pytest.mark.slow

DATA_VERSION = "dagster/data_version"


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path)
    yield p
    p.handle.stop()


@pytest.fixture
def instance():
    """The Dagster home `chaser-pipeline sync` records in (DAGSTER_HOME, one per test)."""
    with dg.DagsterInstance.get() as instance:
        yield instance


def sync(capsys, *options: str) -> str:
    assert main(["sync", *options]) == 0, capsys.readouterr()
    return capsys.readouterr().out


MARKED = "marked quiet: the next sync stops at the quiet check"


def until_marked(capsys) -> None:
    """Syncs until one ends marked quiet (or is quiet already): at most two, the second when the
    first's sends changed which documents Chaser holds (a create, a withdrawal), which three
    models read and only a run rebuilds."""
    for _ in range(2):
        out = sync(capsys)
        if MARKED in out or "no Dagster run started" in out:
            return
    raise AssertionError("two syncs in a row and no quiet mark")


def quiet_now(pipeline, capsys) -> None:
    """The first sync sends everything; the syncs that follow find nothing to send."""
    first = sync(capsys)
    assert "no pipeline DuckDB yet (a first sync): running the jobs" in first
    if MARKED not in first:
        assert MARKED in sync(capsys)


def latest(instance: dg.DagsterInstance, asset: str) -> dg.EventLogEntry:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, asset
    return event


def test_a_quiet_day_starts_no_run_sends_nothing_and_keeps_the_assets_fresh(
    pipeline, capsys, instance
):
    quiet_now(pipeline, capsys)
    runs, requests = instance.get_runs_count(), pipeline.store().request_count()
    extract_before = latest(instance, "ledger_invoices")

    out = sync(capsys)

    assert "no Dagster run started" in out and "nothing changed since the sync of" in out
    assert "months with ledger changes: none" in out
    assert "done: 0 created, 0 updated, 0 rejected by Chaser" in out
    assert instance.get_runs_count() == runs
    assert pipeline.store().request_count() == requests
    # each extract: reported without a run, its figures real, its data version unchanged
    extract = latest(instance, "ledger_invoices")
    assert extract.timestamp > extract_before.timestamp and not extract.run_id
    metadata = extract.asset_materialization.metadata
    assert QUIET_CHECK in metadata and metadata["rows_inserted"].value == 0
    assert (
        metadata["dagster/row_count"]
        == extract_before.asset_materialization.metadata["dagster/row_count"]
    )
    assert (
        extract.asset_materialization.tags[DATA_VERSION]
        == (extract_before.asset_materialization.tags[DATA_VERSION])
    )
    # the daily sync assets too: their freshness policies count the day
    customers = latest(instance, CUSTOMERS.sync_asset)
    assert not customers.run_id and QUIET_CHECK in customers.asset_materialization.metadata
    # ... with their blocking rejection-rate check evaluated for that materialization
    check = dg.AssetCheckKey(dg.AssetKey(CUSTOMERS.sync_asset), "rejection_rate")
    [execution] = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
    evaluation = execution.event.dagster_event.event_specific_data
    assert evaluation.passed and QUIET_CHECK in evaluation.metadata
    [record] = instance.fetch_materializations(dg.AssetKey(CUSTOMERS.sync_asset), limit=1).records
    assert evaluation.target_materialization_data.storage_id == record.storage_id
    # and the next quiet day is quiet again
    assert "no Dagster run started" in sync(capsys)
    assert instance.get_runs_count() == runs


def an_invoice_chaser_chases(pipeline) -> str:
    [(invoice,)] = pipeline.query(
        """select i.invoice_id from chaser_invoices i
        join chaser_sync.state s on s.object = 'invoices' and s.key = i.invoice_id
        where i.status = 'AUTHORISED' and i.amount_due > 1 order by 1 limit 1"""
    )
    return invoice


CHANGES = {
    "a payment": lambda p, invoice: p.ledger(
        """insert into ledger.payments
            (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at)
        values ('PAY-QUIET', $1, 1.00, now()::timestamp, false, now()::timestamp)""",
        [invoice],
    ),
    "an invoice deleted": lambda p, invoice: p.ledger(
        "delete from ledger.invoices where invoice_id = $1", [invoice]
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_ledger_change_runs_the_jobs_and_their_extract_lands_it(
    pipeline, capsys, instance, change
):
    quiet_now(pipeline, capsys)
    invoice = an_invoice_chaser_chases(pipeline)
    before = pipeline.chaser("invoices")[invoice]
    runs, writes = instance.get_runs_count(), pipeline.write_requests("invoices")
    CHANGES[change](pipeline, invoice)

    out = sync(capsys)

    assert "the warehouse changed:" in out and "running the jobs" in out
    assert instance.get_runs_count() > runs
    assert pipeline.write_requests("invoices") > writes
    assert pipeline.chaser("invoices")[invoice] != before
    # the jobs' own extract landed the change and says so
    table = "payments" if change == "a payment" else "invoices"
    extract = latest(instance, f"ledger_{table}")
    assert extract.run_id
    metadata = extract.asset_materialization.metadata
    landed = metadata["rows_inserted"].value + metadata["deleted_keys_new"].value
    assert landed == 1
    if change == "a payment":
        # an update of a document Chaser holds changes no model's input: marked at once
        assert MARKED in out
    # nothing left to do: quiet again once the mark is set
    until_marked(capsys)
    assert "no Dagster run started" in sync(capsys)


def test_a_changed_sync_state_or_setting_runs_the_jobs(pipeline, capsys, instance, monkeypatch):
    quiet_now(pipeline, capsys)
    # a state restored from an older backup: one customer Chaser holds is not known to be sent
    con = pipeline_duckdb(pipeline)
    try:
        [(key,)] = con.execute(
            "select key from chaser_sync.state where object = 'customers' order by key limit 1"
        ).fetchall()
        con.execute("delete from chaser_sync.state where object = 'customers' and key = ?", [key])
    finally:
        con.close()
    runs = instance.get_runs_count()
    out = sync(capsys)
    assert "the models, the sync state or Chaser's holdings changed since" in out
    assert instance.get_runs_count() > runs
    [(known,)] = pipeline.query(
        "select count(*) from chaser_sync.state where object = 'customers' and key = ?", [key]
    )
    assert known == 1  # the jobs put it right
    until_marked(capsys)

    # how a run goes (pacing, timeouts, crons) is not what it sends: still quiet
    monkeypatch.setenv("CHASER_API_REQUESTS_PER_MINUTE", "150")
    assert "no Dagster run started" in sync(capsys)
    # another default country normalises phone numbers differently: the jobs run
    monkeypatch.setenv("CHASER_DEFAULT_COUNTRY", "US")
    runs = instance.get_runs_count()
    out = sync(capsys)
    assert "the settings changed since the last sync" in out
    assert instance.get_runs_count() > runs


def test_options_run_the_jobs_and_a_dry_run_clears_the_mark(pipeline, capsys, instance):
    quiet_now(pipeline, capsys)
    runs = instance.get_runs_count()
    out = sync(capsys, "--always-run")
    assert "quiet check (" not in out and instance.get_runs_count() > runs
    runs = instance.get_runs_count()
    sync(capsys, "--dry-run")
    assert instance.get_runs_count() > runs
    assert "the last sync left no quiet mark" in sync(capsys)


def test_a_broken_warehouse_fails_in_the_jobs_not_in_the_check(pipeline, capsys, instance):
    quiet_now(pipeline, capsys)
    pipeline.ledger("alter table ledger.payments drop column paid_at")
    assert main(["sync"]) == 1
    out = capsys.readouterr().out
    assert "the check could not finish" in out
    assert "ledger_payments failed: " in out and "sql/payments.sql" in out
    assert "Traceback" not in out


def in_postgres(url: str, sql: str) -> None:
    """One statement on the shared state database, as another worker would run it."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        conn.commit()


def pipeline_duckdb(pipeline):
    import duckdb

    return duckdb.connect(str(pipeline.duckdb_path))


@pytest.mark.postgres
def test_with_the_state_in_postgresql_another_workers_send_runs_the_jobs(
    tmp_path, capsys, instance, postgres_url
):
    """The check reads the state where it lives, of this pipeline's own Chaser organisation: a
    row another worker changed in PostgreSQL (one it lost, one it rewrote) is a change, and this
    worker's jobs run, whichever organisation another pipeline sharing the database checked
    last."""
    pipeline = make_pipeline(tmp_path, env={"CHASER_STATE_URL": postgres_url})
    try:
        quiet_now(pipeline, capsys)
        assert "no Dagster run started" in sync(capsys)
        in_postgres(
            postgres_url,
            "delete from chaser_sync.state where ctid = (select ctid from chaser_sync.state "
            "where object = 'customers' order by key limit 1)",
        )
        runs = instance.get_runs_count()
        out = sync(capsys)
        assert "the models, the sync state or Chaser's holdings changed since" in out
        assert instance.get_runs_count() > runs
        until_marked(capsys)
        assert "no Dagster run started" in sync(capsys)

        # another pipeline sharing the state database checks its own organisation after ours:
        # the check still reads this pipeline's organisation, whose state changes next
        in_postgres(
            postgres_url,
            "insert into chaser_sync.targets (target, url, organisation_id, organisation_name, "
            "first_seen_at, last_checked_at, checked_run_id) values ('https://other.example|"
            "org-b', 'https://other.example', 'org-b', 'B', now(), timestamp '2099-01-01', "
            "'another-run')",
        )
        assert "no Dagster run started" in sync(capsys)
        in_postgres(
            postgres_url,
            "update chaser_sync.state set payload_hash = 'changed-by-another-worker' where ctid = "
            "(select ctid from chaser_sync.state where object = 'customers' order by key limit 1)",
        )
        writes = pipeline.write_requests("customers")
        out = sync(capsys)
        assert "the models, the sync state or Chaser's holdings changed since" in out
        assert pipeline.write_requests("customers") > writes  # the jobs sent it again
    finally:
        pipeline.handle.stop()


def test_a_held_back_change_no_sync_can_send_leaves_the_day_quiet(pipeline, capsys, instance):
    """A duplicated payment id is held back by the models until the ledger fixes it: no sync
    can send it, so it must not make every day run the jobs."""
    pipeline.ledger(
        "insert into ledger.payments select * from ledger.payments "
        "where payment_id = (select min(payment_id) from ledger.payments)"
    )
    quiet_now(pipeline, capsys)
    runs = instance.get_runs_count()
    assert "no Dagster run started" in sync(capsys)
    assert instance.get_runs_count() == runs
