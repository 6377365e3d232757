"""Payload encoding contract: the JSON the sync renders in DuckDB for each mart row is exactly what
the client's one encoding function writes (money with two decimals, Chaser dates), for every Chaser object."""

from __future__ import annotations

import json

import duckdb
import pytest

from chaser_pipeline.chaser.encoding import RawJSON, dumps, encode_payload
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.models.build import run_models
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import payload_json_sql
from tests.support.models import land_warehouse, project


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoding")
    # enough invoices for every object to have more than 20 rows (overpayments are the fewest)
    warehouse = generate_demo_warehouse(
        root / "wh.duckdb", invoices=1500, customers=80, credit_notes=80
    ).path
    con = duckdb.connect(str(root / "p.duckdb"))
    land_warehouse(con, warehouse)
    # a name outside ASCII, and money that binary floats get wrong
    con.execute(
        "update landing.customers set company_name = 'Zoë & Søn Ltd — Café' "
        "where customer_id = (select min(customer_id) from landing.customers where company_name <> '')"
    )
    run_models(con, project())
    yield con
    con.close()


@pytest.mark.parametrize("object_name", sorted(CHASER_OBJECTS))
def test_sql_rendered_payloads_equal_the_encoding_function(marts, object_name):
    spec = CHASER_OBJECTS[object_name]
    columns = [r[0] for r in marts.execute(f"describe {spec.mart}").fetchall()]
    rows = (
        marts.sql(
            f"select *, {payload_json_sql(columns)} as rendered from {spec.mart} order by {spec.key}"
        )
        .to_arrow_table()
        .to_pylist()
    )
    assert len(rows) > 20
    non_ascii = 0
    for row in rows:
        rendered = row.pop("rendered")
        expected = dumps(encode_payload(row)).decode()
        if rendered.isascii():
            assert rendered == expected, row[spec.key]
        else:  # DuckDB keeps UTF-8 where the encoder writes \\u escapes: the same JSON
            non_ascii += 1
            assert json.loads(rendered, parse_float=str) == json.loads(expected, parse_float=str)
        # money leaves with exactly two decimals, as text digits
        for field in ("total", "sub_total", "amount_paid", "amount_due", "remaining_credit"):
            if field in row and row[field] is not None:
                assert f'"{field}":{row[field]:.2f}' in rendered
    assert non_ascii == (1 if object_name == "customers" else 0)


def test_raw_json_entries_are_written_verbatim():
    body = dumps({"entries": [RawJSON('{"total":0.30,"company_name":"Zoë"}', "C-1")]})
    assert body == '{"entries":[{"total":0.30,"company_name":"Zoë"}]}'.encode()
