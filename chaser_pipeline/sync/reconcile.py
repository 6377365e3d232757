"""Recovery from Chaser: read back what a target holds and rebuild or repair the sync state.

The state is the pipeline's memory of what Chaser confirmed. When it is lost (a fresh container
without CHASER_STATE_URL), restored from an old backup, or wrong because someone edited records
by hand in Chaser, `reconcile` reads every record Chaser holds (paged lists, within the request
budget), shapes each into its mart's columns, and hashes it exactly as the plan hashes a payload.
Then:

- a record equal to what the models say now is in step (the next sync sends nothing for it);
- a record that differs (edited in Chaser, or the ledger changed since) is drift;
- a record the ledger does not know is reported (nothing is withdrawn on a guess);
- a row the models hold that Chaser does not is missing in Chaser (never sent, or deleted there).

With `apply`, the target's state rows are replaced by what Chaser holds, so the next sync sends
exactly the differences: nothing already in step is sent again, every drifted record is put
back as the ledger says, and every missing one is created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.chaser.errors import NotFoundError
from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.models.build import model_query
from chaser_pipeline.models.project import ModelProject, as_project
from chaser_pipeline.sync.objects import CHASER_OBJECTS, ChaserObject
from chaser_pipeline.sync.plan import mart_columns
from chaser_pipeline.sync.state import SyncState, Target

EXAMPLES = 5


@dataclass
class ObjectDrift:
    """How one object in Chaser compares with the models and the state."""

    object_name: str
    held: int = 0  # records Chaser holds
    in_step: int = 0  # equal to what the models say now
    differing: list[str] = field(default_factory=list)  # keys: Chaser's record differs
    unknown: list[str] = field(default_factory=list)  # keys the ledger does not know
    missing: int = 0  # rows the models hold that Chaser does not
    state_disagrees: int = 0  # state rows that did not match what Chaser holds
    requests: int = 0

    def summary(self) -> str:
        return (
            f"{self.object_name}: Chaser holds {self.held}; {self.in_step} as the ledger says, "
            f"{len(self.differing)} differ, {len(self.unknown)} unknown to the ledger; "
            f"{self.missing} of the ledger's are not in Chaser (never sent: not worth it, "
            f"waiting, or deleted there); the state disagreed on {self.state_disagrees} "
            f"({self.requests} requests)"
        )


@dataclass
class ReconcileReport:
    target: Target
    objects: dict[str, ObjectDrift] = field(default_factory=dict)
    applied: bool = False

    @property
    def requests(self) -> int:
        return sum(d.requests for d in self.objects.values())


async def read_back(
    client: ChaserClient, chaser_object: ChaserObject, parents: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every record Chaser holds for the object, page by page; a routed object (contact
    persons) is listed per parent (customer), each record tagged with it."""
    if not chaser_object.route_column:
        return [record async for record in client.endpoint(chaser_object.name).list()]
    endpoint = client.endpoint(chaser_object.name)
    records = []
    for parent in parents:
        try:
            async for record in endpoint.list(parent):
                records.append({**record, chaser_object.route_column: parent})
        except NotFoundError:
            continue  # Chaser does not hold this customer, so none of its contact persons
    return records


def _parents(state: SyncState, target: Target, chaser_object: ChaserObject) -> list[str]:
    """The parents whose children reconcile reads: those the models or the state know of (a
    list per customer costs one request, so not every customer Chaser holds), the parents the
    state last confirmed rows under included (a row that moved may still be held there)."""
    route = chaser_object.route_column
    rows = state.con.execute(
        f"""select distinct "{route}" from {chaser_object.mart} where "{route}" is not null
        union
        select key from chaser_sync.state
        where target = $1 and object = 'customers' and key in (
            select split_part(key, ':', 1) from chaser_sync.state
            where target = $1 and object = $2)
        union
        select route from chaser_sync.state
        where target = $1 and object = $2 and route is not null
        order by 1""",
        [target.key, chaser_object.name],
    ).fetchall()
    return [r[0] for r in rows]


def _chaser_rows(
    state: SyncState, chaser_object: ChaserObject, records: list[dict[str, Any]]
) -> pa.Table:
    """Chaser's records in their mart's shape (its columns and types), plus Chaser's id."""
    con = state.con
    schema = con.sql(f"select * from {chaser_object.mart} limit 0").to_arrow_table().schema
    shaped = [{name: record.get(name) for name in schema.names} for record in records]
    table = pa.Table.from_pylist(shaped, schema=schema)
    ids = pa.array([str(r.get("id")) if r.get("id") is not None else None for r in records])
    return table.append_column("sync_chaser_id", ids)


def _compare(
    state: SyncState,
    target: Target,
    chaser_object: ChaserObject,
    held: pa.Table,
    project: ModelProject,
) -> ObjectDrift:
    """Hash Chaser's records as the plan hashes payloads; compare with the models and state."""
    con = state.con
    columns = mart_columns(con, chaser_object)  # as the plan hashes a row: routing included
    select = ", ".join(f'h."{c}"' for c in columns)
    con.register("reconcile_held", held)
    sql, params = model_query(project.models[chaser_object.mart], WHOLE_HISTORY)
    con.execute(f"create or replace temp table reconcile_models as {sql}", params)
    route = f'"{chaser_object.route_column}"' if chaser_object.route_column else None
    # A routed row may be held under two parents (a contact person that moved customer): the
    # state keeps one per key, the copy that still chases under a parent the models no longer
    # name first (the next sync archives it there), else the one under the models' parent.
    con.execute(
        f"""create or replace temp table reconcile_chaser as
        with held as (
            select
                h."{chaser_object.key}" as key,
                md5(to_json(struct_pack({", ".join(f'"{c}" := h."{c}"' for c in columns)}))::varchar)
                    as payload_hash,
                h.sync_chaser_id as chaser_id,
                ({chaser_object.chase_sql.replace("m.", "h.")})::decimal(18, 2) as chase_measure,
                {f"h.{route}" if route else "null::varchar"} as route
            from (select {select}, h.sync_chaser_id from reconcile_held as h) as h
        )
        select held.* from held
        left join reconcile_models as m on m."{chaser_object.key}" = held.key
        qualify row_number() over (
            partition by held.key
            order by
                (held.chase_measure <> 0
                    and held.route is distinct from {f"m.{route}" if route else "null"}) desc,
                (held.route = {f"m.{route}" if route else "null"}) desc,
                held.route
        ) = 1"""
    )
    con.unregister("reconcile_held")
    key = chaser_object.key
    drift = ObjectDrift(chaser_object.name, held=held.num_rows)
    rows = con.execute(
        f"""select c.key, md5(to_json(m)::varchar) = c.payload_hash as in_step,
            m."{key}" is not null as known
        from reconcile_chaser as c
        left join reconcile_models as m on m."{key}" = c.key"""
    ).fetchall()
    for found, in_step, known in rows:
        if not known:
            drift.unknown.append(found)
        elif in_step:
            drift.in_step += 1
        else:
            drift.differing.append(found)
    ((drift.missing,),) = con.execute(
        f"""select count(*) from reconcile_models as m
        where not exists (select 1 from reconcile_chaser c where c.key = m."{key}")"""
    ).fetchall()
    ((drift.state_disagrees,),) = con.execute(
        """select count(*) from (
            select key, payload_hash from reconcile_chaser
            except
            select key, payload_hash from chaser_sync.state where target = $1 and object = $2
        )""",
        [target.key, chaser_object.name],
    ).fetchall()
    return drift


def reconcile(
    state: SyncState,
    target: Target,
    client_factory: Callable[[], ChaserClient],
    models_dir: Path | ModelProject,
    *,
    objects: Sequence[str] | None = None,
    apply: bool = False,
    now: datetime,
) -> ReconcileReport:
    """Read back what `target` holds for each object and report drift; with `apply`, replace
    the target's state rows with what Chaser holds."""
    state.refresh(target)
    project = as_project(models_dir)
    report = ReconcileReport(target, applied=apply)
    for name in objects or list(CHASER_OBJECTS):
        chaser_object = CHASER_OBJECTS[name]
        parents = _parents(state, target, chaser_object) if chaser_object.route_column else []

        async def fetch(
            chaser_object: ChaserObject = chaser_object, parents: list[str] = parents
        ) -> tuple[list, int]:
            async with client_factory() as client:
                records = await read_back(client, chaser_object, parents)
                return records, client.stats.requests

        records, requests = asyncio.run(fetch())
        held = _chaser_rows(state, chaser_object, records)
        drift = _compare(state, target, chaser_object, held, project)
        drift.requests = requests
        report.objects[name] = drift
        if apply:
            # what the models do not know was not sent by this pipeline as far as anyone can
            # tell: adopted, so a missing ledger row never withdraws it (plan.stuck_withdrawals)
            rows = state.con.sql(
                f"""select c.key, c.payload_hash, c.chaser_id, c.chase_measure, c.route,
                    case when m."{chaser_object.key}" is null then 'adopted' else 'confirmed' end
                        as last_status
                from reconcile_chaser as c
                left join reconcile_models as m on m."{chaser_object.key}" = c.key"""
            ).to_arrow_table()
            state.replace(target, chaser_object.name, rows, now=now)
    return report


@dataclass
class DriftSample:
    """A few pages of one object read back and compared with the state (the daily check)."""

    object_name: str
    pages: list[int]
    records: int = 0
    drifted: list[str] = field(default_factory=list)  # Chaser holds other than the state says
    unknown: list[str] = field(default_factory=list)  # Chaser holds, the state never confirmed


async def _sample_pages(
    client: ChaserClient, chaser_object: ChaserObject, pages: int, seed: int
) -> tuple[list[int], list[dict[str, Any]]]:
    """Page 0 (for the total), then `pages - 1` other pages picked by `seed`."""
    path = f"/v1/{chaser_object.name}"
    first = await client.request("GET", path, params={"page": 0, "limit": 100})
    total = first.get("total_count") or len(first.get("data") or [])
    last_page = max(0, (int(total) - 1) // 100)
    others = sorted({(seed * 7919 + i * 104729) % (last_page + 1) for i in range(pages - 1)} - {0})
    records = list(first.get("data") or [])
    for number in others:
        body = await client.request("GET", path, params={"page": number, "limit": 100})
        records.extend(body.get("data") or [])
    return [0, *others], records


def sample_drift(
    state: SyncState,
    target: Target,
    client_factory: Callable[[], ChaserClient],
    object_name: str,
    *,
    pages: int,
    seed: int,
) -> DriftSample:
    """Read `pages` pages of one object (a day's sample: `seed` picks them) and compare each
    record with the hash the state says Chaser confirmed."""
    chaser_object = CHASER_OBJECTS[object_name]
    state.refresh(target)

    async def fetch() -> tuple[list[int], list[dict[str, Any]]]:
        async with client_factory() as client:
            return await _sample_pages(client, chaser_object, pages, seed)

    numbers, records = asyncio.run(fetch())
    held = _chaser_rows(state, chaser_object, records)
    columns = mart_columns(state.con, chaser_object)
    state.con.register("sampled", held)
    try:
        rows = state.con.execute(
            f"""select h."{chaser_object.key}",
                md5(to_json(struct_pack({", ".join(f'"{c}" := h."{c}"' for c in columns)}))::varchar),
                s.payload_hash
            from sampled as h
            left join chaser_sync.state as s
                on s.target = $1 and s.object = $2 and s.key = h."{chaser_object.key}\"""",
            [target.key, object_name],
        ).fetchall()
    finally:
        state.con.unregister("sampled")
    sample = DriftSample(object_name, numbers, len(records))
    for key, held_hash, state_hash in rows:
        if state_hash is None:
            sample.unknown.append(key)
        elif held_hash != state_hash:
            sample.drifted.append(key)
    return sample
