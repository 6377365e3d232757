"""The mass-change guard holds for every run, not only the one it stopped: after the whole-history
plan (`chaser_pending_months`) was stopped, no sync step sends (a monthly run the sensor queued
before, a backfill, a step materialized from the UI) until a plan passes, confirmed or with the
ledger put right; a dry run still shows what would go."""

from __future__ import annotations

import pytest

from tests.support.pipeline import AS_OF, make_pipeline

pytestmark = pytest.mark.slow


def test_a_backfill_after_the_guard_stopped_the_plan_sends_nothing_until_confirmed(tmp_path):
    p = make_pipeline(tmp_path, invoices=400)
    try:
        assert p.sync().success
        before = p.write_requests("invoices")
        # every due date moves by a day: a mass change (a re-mapped column, say)
        p.ledger(
            "update ledger.invoices set due_date = due_date + 1, updated_at = '2026-11-20 10:00:00'"
        )
        assert not p.sync().success  # the guard stops the plan
        monthly = p.defs.resolve_job_def("chaser_monthly_sync")
        keys = monthly.partitions_def.get_partition_keys()
        config = {
            "ops": {
                name: {"config": {"as_of": AS_OF}}
                for name in (
                    "sync_chaser_invoices",
                    "sync_chaser_credit_notes",
                    "sync_chaser_overpayments",
                )
            }
        }
        backfill = monthly.execute_in_process(
            instance=p.instance,
            run_config=config,
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
            raise_on_error=False,
        )
        assert not backfill.success and p.write_requests("invoices") == before
        failure = next(e for e in backfill.get_step_failure_events())
        assert "mass-change guard" in failure.step_failure_data.user_failure_data.description

        confirmed = p.sync(confirm_mass_change=True)
        assert confirmed.success and p.write_requests("invoices") > before
    finally:
        p.handle.stop()
