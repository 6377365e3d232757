"""Ledger rules the Chaser marts must obey beyond their YAML contracts, as violation queries:
amounts that add up, ISO 4217 currencies, Chaser's date format (ERROR: the sync must not run), and
the reported cases worth a look (WARN: overpaid invoices, over-allocated credit, invalid e-mail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaser_pipeline.models.contract import ViolationQuery
from chaser_pipeline.models.field_rules import iso4217_codes

# What Chaser accepts for dates (CHASER_API.md): UTC with milliseconds.
CHASER_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

# chaser_rejections reason codes the WARN checks count (written by the marts' SQL).
OVERPAYMENT_REASONS = ("overpaid",)
OVER_ALLOCATION_REASONS = ("over_allocated",)
BAD_EMAIL_REASONS = ("invalid_email",)


def _dates_query(table: str, key: str, required: Iterable[str], optional: Iterable[str]) -> str:
    parts = [
        f"select {key}::varchar as {key}, '{c}' as date_column, {c} as value from {table} "
        f"where {c} is null or not regexp_full_match({c}, $pattern)"
        for c in required
    ] + [
        f"select {key}::varchar as {key}, '{c}' as date_column, {c} as value from {table} "
        f"where {c} is not null and not regexp_full_match({c}, $pattern)"
        for c in optional
    ]
    return "\nunion all\n".join(parts)


REJECTIONS_QUERY = (
    "select entity, key, reason_code, detail from chaser_rejections "
    "where list_contains($reasons, reason_code) order by entity, key"
)


@dataclass(frozen=True)
class MartRule:
    """A ledger rule on one model: an ERROR rule blocks the sync, a WARN rule only reports."""

    model: str
    query: ViolationQuery
    severity: str  # ERROR | WARN


def mart_rules() -> list[MartRule]:
    """Every ledger rule the Chaser marts must obey, as violation queries."""
    error, warn = "ERROR", "WARN"
    currencies = {"codes": iso4217_codes().to_pylist()}
    pattern = {"pattern": CHASER_DATE_PATTERN}
    checks: list[MartRule] = [
        MartRule(
            "chaser_invoices",
            ViolationQuery(
                "amounts_add_up",
                "amount_paid + amount_due equals total on every invoice Chaser gets.",
                "select invoice_id, total, amount_paid, amount_due from chaser_invoices "
                "where amount_paid + amount_due is distinct from total",
            ),
            error,
        ),
        MartRule(
            "chaser_credit_notes",
            ViolationQuery(
                "remaining_credit_within_total",
                "remaining_credit is between 0 and the credit note's total.",
                "select credit_note_id, total, remaining_credit from chaser_credit_notes "
                "where remaining_credit is null or remaining_credit < 0 or remaining_credit > total",
            ),
            error,
        ),
    ]
    for table, key in (
        ("chaser_invoices", "invoice_id"),
        ("chaser_credit_notes", "credit_note_id"),
    ):
        noun = "invoice" if table == "chaser_invoices" else "credit note"
        checks += [
            # "references a customer being sent" is the YAML contract's relationship check
            # (relationship_customer_external_id): declared once, beside the model.
            MartRule(
                table,
                ViolationQuery(
                    "currency_code_iso4217",
                    f"Every {noun} currency_code is an ISO 4217 code.",
                    f"select {key}, currency_code from {table} "
                    "where currency_code is null or not list_contains($codes, currency_code)",
                    currencies,
                ),
                error,
            ),
            MartRule(
                table,
                ViolationQuery(
                    "dates_in_chaser_format",
                    f"{noun.capitalize()} dates are text like 2024-01-31T00:00:00.000Z.",
                    _dates_query(
                        table,
                        key,
                        required=("date", "due_date") if noun == "invoice" else ("date",),
                        optional=("fully_paid_date",) if noun == "invoice" else (),
                    ),
                    pattern,
                ),
                error,
            ),
        ]
    for name, description, reasons in (
        (
            "overpaid_invoices",
            "Invoices paid more than their total (sent as PAID).",
            OVERPAYMENT_REASONS,
        ),
        (
            "over_allocated_credit_notes",
            "Credit notes allocated beyond their total (remaining credit sent as 0).",
            OVER_ALLOCATION_REASONS,
        ),
        (
            "invalid_emails_left_out",
            "Customers whose e-mail address is invalid and was left out.",
            BAD_EMAIL_REASONS,
        ),
    ):
        checks.append(
            MartRule(
                "chaser_rejections",
                ViolationQuery(name, description, REJECTIONS_QUERY, {"reasons": list(reasons)}),
                warn,
            )
        )
    return checks
