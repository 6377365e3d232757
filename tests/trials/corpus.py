"""The bad-input corpus: kinds of bad ledger input, each with the rows (or SQL) that make it and
what the pipeline must do with it. `test_bad_input_corpus.py` runs them; `benchmarks/trials.py`
counts them.

Every kind lives in one warehouse beside good rows and the other kinds (ids are unique per kind),
except the extract-level ones (`refusal`), which change one table's SQL in a copy of it.
`later` SQL runs between sync runs: stage 2 one day after the first run (an incremental extract),
stage 3 eight days after it (the weekly full comparison is due).
"""

from __future__ import annotations

from typing import Any

from tests.support.ledger import contact
from tests.trials.corpus_base import D, Kind, alloc, cn, co, inv, pay
from tests.trials.corpus_changes import changes, refusals
from tests.trials.corpus_rows import codes, dates, keys, money
from tests.trials.corpus_text import more, relations, text

GOOD: dict[str, list[dict[str, Any]]] = {
    "customers": [co("C-OK"), co("C-OK2")],
    "invoices": [inv("G-I1"), inv("G-I2")],
    "payments": [pay("G-P1", "G-I2", "40.00")],
    "credit_notes": [cn("G-CN1")],
    "credit_allocations": [alloc("G-A1", "G-CN1", "G-I2", "20.00")],
    "contacts": [contact("G-CT1", "C-OK")],
}
# What Chaser must hold for the good rows, whatever the bad ones around them.
GOOD_IN_CHASER: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("customers", "C-OK", {"company_name": "Company C-OK", "status": "ACTIVE"}),
    ("customers", "C-OK2", {"company_name": "Company C-OK2"}),
    ("invoices", "G-I1", {"status": "AUTHORISED", "amount_due": D("100.00")}),
    ("invoices", "G-I2", {"amount_paid": D("60.00"), "amount_due": D("40.00")}),
    ("credit_notes", "G-CN1", {"status": "ACTIVE", "remaining_credit": D("30.00")}),
    ("contact_persons", "G-CT1", {"contact_email_address": "g-ct1@example.com"}),
)

CORPUS: list[Kind] = [
    *keys(),
    *money(),
    *codes(),
    *dates(),
    *text(),
    *relations(),
    *more(),
    *changes(),
    *refusals(),
]
assert len({k.name for k in CORPUS}) == len(CORPUS), "kind names must be unique"
