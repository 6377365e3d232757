"""Initial-load contract through Dagster (demo warehouse -> the sync jobs -> emulator over
loopback, the organisation in its first day): an object of send_process_min_requests write
requests or more is sent from a process of its own, the step says so in the run's log, Chaser
holds exactly the models' rows with each write request made once, and the next run sends
nothing; objects under the threshold are sent from the step's own process."""

from __future__ import annotations

import pytest

from chaser_pipeline.emulator.rate_limit import RateLimitConfig
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from tests.support.pipeline import make_pipeline

pytestmark = pytest.mark.slow

PROCESS_LINE = "were sent from a process of their own"


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path, rate_limit=RateLimitConfig(new_organisation=True))
    yield p
    p.handle.stop()


def test_an_initial_load_sends_its_large_objects_from_a_process_of_their_own(pipeline):
    threshold = SyncOptions().send_process_min_requests
    run = pipeline.sync(initial_load=True)
    assert run.success

    messages = [
        entry.user_message
        for run_id in run.run_ids
        for entry in pipeline.instance.all_logs(run_id)
        if entry.user_message and PROCESS_LINE in entry.user_message
    ]
    sent_apart = {m.split("Initial load: ", 1)[1].split(" ", 1)[0] for m in messages}
    requests = {
        name: run.summary((o.sync_asset,)).write_requests for name, o in CHASER_OBJECTS.items()
    }
    # the demo's contact persons (one request per customer) reach the threshold, and only the
    # objects that do are sent apart
    assert requests["contact_persons"] >= threshold
    assert sent_apart == {name for name, n in requests.items() if n >= threshold}

    # each write request once, as the step counted it, and Chaser holds the models' rows
    for name, count in requests.items():
        assert pipeline.write_requests(name) == count, name
    for name in ("customers", "invoices", "credit_notes"):
        expected = pipeline.expected(name)
        assert expected, name
        assert pipeline.chaser(name) == expected, name
    # contact persons, by key (Chaser files each under its customer's own id)
    assert set(pipeline.chaser("contact_persons")) == set(pipeline.expected("contact_persons"))
    assert pipeline.query("select count(*) from chaser_sync.journal") == [(0,)]

    before = pipeline.write_requests()
    again = pipeline.sync()
    assert again.success
    assert pipeline.write_requests() == before
