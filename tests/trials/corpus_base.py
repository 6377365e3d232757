"""What a kind of bad input is (`Kind`, `Refusal`), and row builders for the corpus: ids are
unique per kind, documents belong to the good customer C-OK unless a kind says otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.support.ledger import allocation, credit_note, customer, invoice, payment

HELD, REPORTED, REFUSED = "held_back", "reported", "refused"
NORMALISED, AS_GIVEN = "normalised", "sent as given"
MISSING = "(missing)"
D = Decimal


@dataclass(frozen=True)
class Refusal:
    """An extract-level kind: the table's SQL select list with `replace` swapped in (or the file
    removed, `drop_file`), and the words the extract's error (or report) must hold."""

    replace: dict[str, str] = field(default_factory=dict)
    drop_file: bool = False
    message: tuple[str, ...] = ()
    accepted: bool = False  # the extract goes on (and says so in its report)


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    expect: str  # held_back | reported | refused | normalised | sent as given
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sql: tuple[str, ...] = ()  # warehouse SQL run before the first extract
    later: tuple[tuple[int, str], ...] = ()  # (stage, SQL) run before that stage's extract
    # (entity, key, reason_code, severity) in chaser_rejections, and words its detail holds
    rejection: tuple[str, str, str, str] | None = None
    detail: str = ""
    # (object, key, {field: value} or None for "not in Chaser"), checked after the last stage
    chaser: tuple[tuple[str, str, dict[str, Any] | None], ...] = ()
    chaser_stage: int = 3
    extract: tuple[str, str, str] | None = None  # (table, ExtractResult field, key it lists)
    refusal: Refusal | None = None
    xfail: str = ""


def inv(key: str, **extra: Any) -> dict[str, Any]:
    return invoice(key, customer_id="C-OK", **extra)


def cn(key: str, **extra: Any) -> dict[str, Any]:
    return credit_note(key, customer_id="C-OK", **extra)


def pay(key: str | None, invoice_id: str | None, amount: str, **extra: Any) -> dict[str, Any]:
    return payment(key, invoice_id, amount=D(amount), **extra)


def alloc(key: str | None, credit: str, invoice_id: str | None, amount: str, **extra):
    return allocation(key, credit, invoice_id, amount=D(amount), **extra)


def co(key: str | None, **extra: Any) -> dict[str, Any]:
    return customer(key, **extra)


LATER = "timestamp '2024-06-01 12:00'"  # between the first and the second extract
PAID = {"status": "PAID", "amount_due": D("0.00")}
