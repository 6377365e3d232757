"""Asset checks: the SQL models' YAML contracts, and the ledger rules the Chaser marts must obey.

Every check is a "violation query" (`chaser_pipeline.modelling.ViolationQuery`): SQL returning one
row per offending row. One helper runs it in DuckDB and turns it into an `AssetCheckResult` with
the count and up to five example rows, so contract checks and ledger checks share one machinery.

Checks run over the whole table, also for partitioned marts: a partition write cannot break a
rule in another partition, but a whole-table check is the simplest one that is always correct
(for example a relationship to a customer that has since been rejected), and it stays cheap.

ERROR checks are blocking: in the run that materializes their asset, a failure stops every
downstream asset (the Chaser syncs) and fails the run. WARN checks only report.
"""

from collections.abc import Iterable

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.modelling import (
    Model,
    ViolationQuery,
    contract_queries,
    find_violations,
)
from chaser_pipeline.resources import duckdb_connection

EXAMPLES = 5


def violation_check_result(
    con: duckdb.DuckDBPyConnection,
    query: ViolationQuery,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """Run a violation query: passed when it returns no row; count and examples in metadata."""
    found = find_violations(con, query, examples=EXAMPLES)
    return dg.AssetCheckResult(
        passed=found.count == 0,
        severity=severity,
        description=query.description
        if found.count == 0
        else f"{found.count} row(s) break this rule: {query.description}",
        metadata={
            "violations": dg.MetadataValue.int(found.count),
            "examples": dg.MetadataValue.json(found.examples),
            "violation_query": dg.MetadataValue.md(f"```sql\n{query.sql}\n```"),
        },
    )


def violation_check(
    asset: str,
    query: ViolationQuery,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetChecksDefinition:
    """An asset check on `asset` that runs `query` in the pipeline's DuckDB.

    ERROR checks are blocking; tables the query reads besides its asset are check dependencies,
    so the check runs after them in a run that materializes both.
    """

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=query.name,
        description=query.description,
        blocking=severity == dg.AssetCheckSeverity.ERROR,
        additional_deps=[dg.AssetKey(t) for t in query.reads if t != asset],
        metadata={"severity": severity.value},
    )
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb_connection(duckdb) as con:
            return violation_check_result(con, query, severity)

    return _check


# --- model contracts (dbt_like_models/<name>.yml `checks:`) -------------------------------------


def contract_checks(model: Model) -> list[dg.AssetChecksDefinition]:
    """The asset checks declared in a model's YAML contract: blocking, ERROR severity."""
    return [violation_check(model.name, q) for q in contract_queries(model)]


# --- ledger rules on the Chaser marts ----------------------------------------------------------

# What Chaser accepts for dates (CHASER_API.md): UTC with milliseconds.
CHASER_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

# chaser_rejections reason codes the WARN checks count (written by the marts' SQL).
OVERPAYMENT_REASONS = ("overpaid",)
OVER_ALLOCATION_REASONS = ("over_allocated",)
BAD_EMAIL_REASONS = ("invalid_email",)


def _iso4217_codes() -> list[str]:
    import pycountry

    return sorted(c.alpha_3 for c in pycountry.currencies)


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


def ledger_queries() -> list[tuple[str, ViolationQuery, dg.AssetCheckSeverity]]:
    """(asset, violation query, severity) for every ledger rule on the marts."""
    error, warn = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
    currencies = {"codes": _iso4217_codes()}
    pattern = {"pattern": CHASER_DATE_PATTERN}
    checks: list[tuple[str, ViolationQuery, dg.AssetCheckSeverity]] = [
        (
            "chaser_invoices",
            ViolationQuery(
                "amounts_add_up",
                "amount_paid + amount_due equals total on every invoice Chaser gets.",
                "select invoice_id, total, amount_paid, amount_due from chaser_invoices "
                "where amount_paid + amount_due is distinct from total",
            ),
            error,
        ),
        (
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
            (
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
            (
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
            (
                "chaser_rejections",
                ViolationQuery(name, description, REJECTIONS_QUERY, {"reasons": list(reasons)}),
                warn,
            )
        )
    return checks


def build_ledger_checks() -> list[dg.AssetChecksDefinition]:
    """Ledger rules as asset checks on chaser_invoices, chaser_credit_notes, chaser_rejections."""
    return [violation_check(asset, query, severity) for asset, query, severity in ledger_queries()]


ledger_checks: list[dg.AssetChecksDefinition] = build_ledger_checks()
