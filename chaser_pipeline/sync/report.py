"""What a sync did, as typed objects: `SyncReport` while it runs, `SyncSummary` once it is done.

`SyncSummary` is the one shape of a sync's figures: the asset writes it as metadata
(`as_metadata`), and the headless summary reads it back (`from_metadata`); its field names are the
metadata labels a user sees in the Dagster UI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any


@dataclass(frozen=True)
class SyncSummary:
    """A sync's figures, named as in its asset metadata."""

    dry_run: bool = False
    planned_create: int = 0
    planned_update: int = 0
    unchanged: int = 0
    held_back_waiting_for_customer: int = 0
    held_back_by_rules: int = 0
    skipped_not_worth_sending: int = 0
    withdrawals: int = 0  # rows sent because the ledger deleted them (DELETED / ARCHIVED)
    created: int = 0
    updated: int = 0
    rejected_by_chaser: int = 0
    write_requests: int = 0
    requests: int = 0  # every request, reads included: what Chaser's budget counts
    planned_requests: int = 0
    retries: int = 0
    rate_limited_429: int = 0
    budget_wait_seconds: float = 0.0
    duration_seconds: float = 0.0
    rows_per_second: float = 0.0

    def as_metadata(self) -> dict[str, bool | int | float]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> SyncSummary:
        """Read a summary back from materialization metadata (plain values or MetadataValues)."""
        values = {}
        for f in fields(cls):
            if f.name in metadata:
                raw = metadata[f.name]
                values[f.name] = getattr(raw, "value", raw)
        return cls(**values)

    def __add__(self, other: SyncSummary) -> SyncSummary:
        added = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "dry_run"
        }
        return SyncSummary(dry_run=self.dry_run or other.dry_run, **added)


@dataclass
class SyncReport:
    """What one sync of one Chaser object did, filled in as it plans and sends."""

    object_name: str
    window: tuple[date, date]
    planned: Counter[str] = field(default_factory=Counter)
    confirmed: Counter[str] = field(default_factory=Counter)  # create / update / archive
    failed: int = 0
    held_back_by_rules: int = 0
    withdrawals: int = 0
    # moved rows left for a later run: their archive under the parent they left is unconfirmed
    deferred: int = 0
    previously_synced: int = 0
    requests: int = 0  # write requests
    all_requests: int = 0
    planned_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    budget_wait_seconds: float = 0.0
    duration_seconds: float = 0.0
    # of which sending: from the first request to the last answer recorded (no plan, no fold)
    send_seconds: float = 0.0
    sent_from_process: bool = False  # an initial load's send (chaser.send_process)
    send_process_unavailable: str = ""  # why it was sent from the step's process instead
    samples: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, message), first few
    dry_run: bool = False

    @property
    def attempted(self) -> int:
        return self.planned["create"] + self.planned["update"] + self.planned["archive"]

    @property
    def rejection_share(self) -> float:
        return self.failed / self.attempted if self.attempted else 0.0

    @property
    def rows_per_second(self) -> float:
        sent = sum(self.confirmed.values()) + self.failed
        return sent / self.duration_seconds if self.duration_seconds else 0.0

    def summary(self) -> SyncSummary:
        return SyncSummary(
            dry_run=self.dry_run,
            planned_create=self.planned["create"],
            planned_update=self.planned["update"],
            unchanged=self.planned["unchanged"],
            held_back_waiting_for_customer=self.planned["held_back"],
            held_back_by_rules=self.held_back_by_rules,
            skipped_not_worth_sending=self.planned["skipped"],
            withdrawals=self.withdrawals,
            created=self.confirmed["create"],
            # a moved row archived under the parent it left is an update there
            updated=self.confirmed["update"] + self.confirmed["archive"],
            rejected_by_chaser=self.failed,
            write_requests=self.requests,
            requests=self.all_requests,
            planned_requests=self.planned_requests,
            retries=self.retries,
            rate_limited_429=self.rate_limited,
            budget_wait_seconds=round(self.budget_wait_seconds, 3),
            duration_seconds=round(self.duration_seconds, 3),
            rows_per_second=round(self.rows_per_second, 1),
        )
