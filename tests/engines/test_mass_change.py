"""One mass-change decision per sync, made before anything is sent and counting every object and
month together: a change to every invoice sends nothing until confirmed, then goes in full."""

from __future__ import annotations

from datetime import datetime

import pytest

from chaser_pipeline.sync.engine import MassChangeError
from chaser_pipeline.sync.plan import SyncOptions


@pytest.fixture
def pipeline(tmp_path, demo_first_run):
    """The demo ledger after its first run, a copy of its own for this test."""
    done, first = demo_first_run
    assert first.sent > 0  # a first load of a new target is expected: no guard
    p = done.clone(tmp_path)
    yield p
    p.close()


def test_a_change_to_every_invoice_sends_nothing_until_confirmed(pipeline):
    p = pipeline
    sent = p.chaser("invoices")
    # every invoice's due date moves: every month of the history changes
    p.ledger(
        "update ledger.invoices set due_date = due_date + interval 7 day, "
        "updated_at = timestamp '2026-11-21 03:00'"
    )
    before = p.write_requests()
    with pytest.raises(MassChangeError, match=r"--confirm-mass-change") as stopped:
        p.run(datetime(2026, 11, 21, 6))
    assert "invoices" in str(stopped.value)
    assert p.write_requests() == before  # nothing went: no customer, no month
    assert p.chaser("invoices") == sent

    confirmed = p.run(datetime(2026, 11, 21, 7), SyncOptions(confirm_mass_change=True))
    assert sum(r.confirmed["update"] for r in confirmed.reports) >= len(sent)
    assert all(p.chaser("invoices")[key]["due_date"] != sent[key]["due_date"] for key in sent)
