"""Fault matrix: whatever the emulator does wrong (429 with and without Retry-After, 500, 503, a
write applied and its connection dropped, slow answers, silence, an outage, credentials revoked
mid-run), a sync of a small ledger followed by a clean run leaves Chaser holding exactly what a
clean sync leaves (every object, every amount), no record twice, no write applied twice except
the ones whose answer was lost; a run a fault stops fails with a message that names what went
wrong and never a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chaser_pipeline.emulator import FaultConfig, RateLimitConfig
from tests.support.pipeline import API_KEY, API_SECRET, make_pipeline
from tests.support.trials import (
    Traffic,
    assert_exact,
    failure_messages,
    holdings,
    record_counts,
    restart_emulator,
)

pytestmark = pytest.mark.slow

LEDGER = {"invoices": 60, "customers": 10, "credit_notes": 10, "seed": 7}
NO_LIMIT = RateLimitConfig(requests_per_minute=None)
# No pacing and short waits, so a trial takes seconds; the 429 trials keep Chaser's budget.
FAST = {"CHASER_API_REQUESTS_PER_MINUTE": "0", "CHASER_API_REQUEST_TIMEOUT": "1"}
PACED = {"CHASER_API_REQUESTS_PER_MINUTE": "200", "CHASER_API_REQUEST_TIMEOUT": "1"}
# A sync of LEDGER makes 15 requests: the organisation, customers, 9 customers' contact persons,
# the organisation again (the monthly run), invoices, credit notes, overpayments. The mid-run
# faults start at the 6th, among the contact persons.
MID_RUN = 5


@dataclass(frozen=True)
class Trial:
    faults: FaultConfig
    env: dict[str, str] = field(default_factory=lambda: FAST)
    # None: the run survives the fault; else a fragment of the failed step's message
    fails_with: str | None = None


TRIALS = {
    "429-retry-after": Trial(
        FaultConfig(rate_429=0.3, retry_after=0.05, first_attempt_only=True, seed=1), PACED
    ),
    # Without Retry-After the budget waits until its window has room (up to a minute): one 429.
    "429-no-retry-after": Trial(FaultConfig(rate_429=0.06, first_attempt_only=True, seed=3), PACED),
    "500": Trial(FaultConfig(rate_5xx=0.3, server_error_status=500, first_attempt_only=True)),
    "503": Trial(FaultConfig(rate_5xx=0.3, server_error_status=503, first_attempt_only=True)),
    "drop-after-commit": Trial(FaultConfig(rate_drop=0.5, first_attempt_only=True, seed=2)),
    "slow": Trial(FaultConfig(latency_ms=150)),
    "silent": Trial(FaultConfig(silent_after=MID_RUN), fails_with="Chaser stopped answering"),
    "outage": Trial(FaultConfig(outage_after=MID_RUN), fails_with="(CHASER_API_URL): ConnectError"),
    "credentials-revoked": Trial(
        FaultConfig(forbidden_after=MID_RUN),
        fails_with="check CHASER_API_KEY and CHASER_API_SECRET",
    ),
}


@pytest.fixture(scope="module")
def clean_sync(tmp_path_factory):
    """What one clean sync of LEDGER leaves in Chaser, and the writes it took."""
    root = tmp_path_factory.mktemp("clean")
    pipeline = make_pipeline(root, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    try:
        assert pipeline.sync().success
        state = pipeline.emulator_state
        return holdings(state), record_counts(state), Traffic.read(state)
    finally:
        pipeline.handle.stop()  # type: ignore[attr-defined]


def _trial_pipeline(root: Path, trial: Trial):
    return make_pipeline(root, env=trial.env, rate_limit=NO_LIMIT, faults=trial.faults, **LEDGER)


@pytest.mark.parametrize("name", list(TRIALS))
def test_a_sync_under_a_fault_then_a_clean_run_leaves_chaser_exact(tmp_path, clean_sync, name):
    trial = TRIALS[name]
    golden, golden_counts, clean_traffic = clean_sync
    pipeline = _trial_pipeline(tmp_path, trial)
    try:
        faulted = pipeline.sync()
        during = Traffic.read(pipeline.emulator_state)
        if trial.fails_with is None:
            assert faulted.success, failure_messages(pipeline.instance, faulted.run_ids)
            assert_exact(pipeline.emulator_state, golden, golden_counts)
        else:
            assert not faulted.success
            messages = failure_messages(pipeline.instance, faulted.run_ids)
            assert messages and all(trial.fails_with in m for m in messages), messages
            for message in messages:
                assert API_SECRET not in message and API_KEY not in message
        # Chaser is well again (back up, answering, the key restored): a clean run completes.
        restart_emulator(pipeline, rate_limit=NO_LIMIT)
        again = pipeline.sync()
        assert again.success, failure_messages(pipeline.instance, again.run_ids)
        if trial.fails_with is None:
            assert again.summary().write_requests == 0  # the faulted run had sent everything
        assert_exact(pipeline.emulator_state, golden, golden_counts)
        after = Traffic.read(pipeline.emulator_state)
    finally:
        pipeline.handle.stop()  # type: ignore[attr-defined]
    _assert_the_fault_happened(name, during)
    # Every write applied twice is one whose answer Chaser dropped: nothing else was re-sent.
    assert sum(after.applied_writes.values()) == (
        sum(clean_traffic.applied_writes.values()) + after.dropped
    )


def _assert_the_fault_happened(name: str, during: Traffic) -> None:
    seen = {
        "429-retry-after": during.rate_limited,
        "429-no-retry-after": during.rate_limited,
        "500": during.server_errors,
        "503": during.server_errors,
        "drop-after-commit": during.dropped,
        "slow": 1,
        "silent": during.unanswered,
        "outage": during.unanswered,
        "credentials-revoked": during.forbidden,
    }[name]
    assert seen, f"the {name} fault never happened: the trial tried nothing"
