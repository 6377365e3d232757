"""Ledger rules the Chaser marts must obey beyond their YAML contracts, as violation queries:
amounts that add up, remaining credit within the total, ISO 4217 currencies, Chaser's date format,
E.164 mobile numbers (ERROR: the sync must not run), and the reported cases worth a look (WARN:
overpaid invoices, over-allocated credit, invalid e-mail, documents stale in Chaser, allocations
that count on neither side, documents waiting for a held-back customer, withdrawals).

Every ERROR rule guards a rule the intermediate models already hold back row by row, so one bad
ledger row never fails a check (and never blocks a month): the check is the guard rail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaser_pipeline.models.contract import ViolationQuery
from chaser_pipeline.models.field_rules import iso4217_codes

# What Chaser accepts for dates (CHASER_API.md): UTC with milliseconds.
CHASER_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
# What Chaser texts: E.164, a + and up to 15 digits.
E164_PATTERN = r"^\+[1-9]\d{1,14}$"

# chaser_rejections reason codes the WARN checks count (written by the marts' SQL).
OVERPAYMENT_REASONS = ("overpaid",)
OVER_ALLOCATION_REASONS = ("over_allocated",)
BAD_EMAIL_REASONS = ("invalid_email",)
STALE_REASONS = ("stale_in_chaser",)
IGNORED_ALLOCATION_REASONS = (
    "allocation_source_not_usable",
    "allocation_invoice_not_payable",
    "allocation_other_customer",
    "allocation_other_currency",
    "allocation_two_sources",
)
CUSTOMER_HELD_BACK_REASONS = ("customer_held_back",)
WITHDRAWAL_REASONS = ("deleted_in_ledger",)


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
    ]
    for table, key, noun in (
        ("chaser_credit_notes", "credit_note_id", "credit note"),
        ("chaser_overpayments", "overpayment_id", "overpayment"),
    ):
        checks.append(
            MartRule(
                table,
                ViolationQuery(
                    "remaining_credit_within_total",
                    f"remaining_credit is between 0 and the {noun}'s total.",
                    f"select {key}, total, remaining_credit from {table} "
                    "where remaining_credit is null or remaining_credit < 0 "
                    "or remaining_credit > total",
                ),
                error,
            )
        )
    for table, key in (
        ("chaser_customers", "external_id"),
        ("chaser_contact_persons", "external_id"),
    ):
        checks.append(
            MartRule(
                table,
                ViolationQuery(
                    "mobile_number_e164",
                    "Every mobile number Chaser may text is in E.164 (+447700900123).",
                    f"select {key}, mobile_number from {table} "
                    "where mobile_number is not null and not regexp_full_match(mobile_number, $e164)",
                    {"e164": E164_PATTERN},
                ),
                error,
            )
        )
    for table, key, noun in (
        ("chaser_invoices", "invoice_id", "invoice"),
        ("chaser_credit_notes", "credit_note_id", "credit note"),
        ("chaser_overpayments", "overpayment_id", "overpayment"),
    ):
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
            "Invoices paid more than their total (sent as PAID; the surplus as an overpayment).",
            OVERPAYMENT_REASONS,
        ),
        (
            "over_allocated_credit_notes",
            "Credit notes allocated beyond their total (remaining credit sent as 0).",
            OVER_ALLOCATION_REASONS,
        ),
        (
            "invalid_emails_left_out",
            "Customers and contacts with an invalid e-mail address, left out.",
            BAD_EMAIL_REASONS,
        ),
        (
            "documents_stale_in_chaser",
            "Rows Chaser holds whose new version is held back: Chaser shows an old version.",
            STALE_REASONS,
        ),
        (
            "allocations_ignored",
            "Allocations counted on neither side (unusable credit or cash, an invoice that cannot "
            "be paid, another customer, another currency).",
            IGNORED_ALLOCATION_REASONS,
        ),
        (
            "documents_waiting_for_their_customer",
            "Documents of a held-back customer: sent only while Chaser already holds it.",
            CUSTOMER_HELD_BACK_REASONS,
        ),
        (
            "withdrawn_from_the_ledger",
            "Rows removed from the ledger: sent as DELETED or ARCHIVED, or counted as never made.",
            WITHDRAWAL_REASONS,
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
