"""Asset checks on the models: each model's YAML contract, and the ledger rules on the marts.

Every check runs a violation query (`chaser_pipeline.models.contract.ViolationQuery`) in DuckDB and
reports the count and up to five example rows, so contract checks and ledger checks share one
machinery. Checks run over the whole table, also for partitioned marts: a partition write cannot
break a rule in another partition, but a whole-table check is the simplest one that is always
correct (a relationship to a customer that has since been held back, say), and it stays cheap.

A check that reads only its model (and models upstream of it) runs in its model's step, right
after the build, as dagster-dbt runs a model's tests: a step of its own per check cost more than
the query (a quiet run had 14 of them). A check that reads a model not upstream of its own (a
relationship to another mart) is a step of its own that runs after both.

ERROR checks are blocking: in the run that materializes their asset, a failure stops every
downstream asset (the Chaser syncs) and fails the run. WARN checks only report.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.models.contract import ViolationQuery, contract_queries, find_violations
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.models.rules import MartRule

EXAMPLES = 5


@dataclass(frozen=True)
class ModelCheck:
    """One check on one model: its violation query and how much a violation matters."""

    model: str
    query: ViolationQuery
    severity: dg.AssetCheckSeverity

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.model), self.query.name)

    def spec(self) -> dg.AssetCheckSpec:
        """The check declared on its model's asset (run in the model's step)."""
        return dg.AssetCheckSpec(
            self.query.name,
            asset=self.model,
            description=self.query.description,
            blocking=self.severity == dg.AssetCheckSeverity.ERROR,
            metadata={"severity": self.severity.value},
        )

    def result(self, con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
        return violation_check_result(
            con, self.query, self.severity, asset_key=self.model, check_name=self.query.name
        )


def violation_check_result(
    con: duckdb.DuckDBPyConnection,
    query: ViolationQuery,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    *,
    asset_key: str | None = None,
    check_name: str | None = None,
) -> dg.AssetCheckResult:
    """Run a violation query: passed when it returns no row; count and examples in metadata."""
    found = find_violations(con, query, examples=EXAMPLES)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
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


def model_checks(project: ModelProject, rules: Sequence[MartRule] = ()) -> list[ModelCheck]:
    """Every model's contract checks (blocking, ERROR), and the given ledger rules on marts."""
    checks = [
        ModelCheck(model.name, query, dg.AssetCheckSeverity.ERROR)
        for model in project.models.values()
        for query in contract_queries(model)
    ]
    checks += [
        ModelCheck(rule.model, rule.query, dg.AssetCheckSeverity(rule.severity)) for rule in rules
    ]
    return checks


def upstream_closure(project: ModelProject, name: str) -> set[str]:
    """Every model `name` reads, directly or through others."""
    found: set[str] = set()
    todo = list(project.upstream_models(name))
    while todo:
        upstream = todo.pop()
        if upstream not in found:
            found.add(upstream)
            todo.extend(project.upstream_models(upstream))
    return found


def runs_in_model_step(project: ModelProject, check: ModelCheck) -> bool:
    """Whether every table the check reads is built before its model's step ends."""
    return set(check.query.reads) - {check.model} <= upstream_closure(project, check.model)


def separate_check(check: ModelCheck) -> dg.AssetChecksDefinition:
    """A check with a step of its own, after its model and the other models it reads."""
    return violation_check(check.model, check.query, check.severity)
