"""Asset checks on the models: each model's YAML contract, and the ledger rules on the marts.

Every check runs a violation query (`chaser_pipeline.models.contract.ViolationQuery`) in DuckDB and
reports the count and up to five example rows, so contract checks and ledger checks share one
machinery. Checks run over the whole table, also for partitioned marts: a partition write cannot
break a rule in another partition, but a whole-table check is the simplest one that is always
correct (a relationship to a customer that has since been held back, say), and it stays cheap.

ERROR checks are blocking: in the run that materializes their asset, a failure stops every
downstream asset (the Chaser syncs) and fails the run. WARN checks only report.
"""

from collections.abc import Sequence

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.models.contract import ViolationQuery, contract_queries, find_violations
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.models.rules import MartRule

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


def model_checks(
    project: ModelProject, rules: Sequence[MartRule] = ()
) -> list[dg.AssetChecksDefinition]:
    """Every model's contract checks (blocking, ERROR), and the given ledger rules on marts."""
    checks = [
        violation_check(model.name, query)
        for model in project.models.values()
        for query in contract_queries(model)
    ]
    checks += [
        violation_check(rule.model, rule.query, dg.AssetCheckSeverity(rule.severity))
        for rule in rules
    ]
    return checks
