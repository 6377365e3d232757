"""The Chaser objects the pipeline keeps in step, and how each maps onto its mart.

One word throughout: a Chaser *object* is a kind of record Chaser holds (customers, invoices,
credit notes). Its name is the API's path segment and the value of the `object` column in the
sync tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChaserObject:
    """How one mart maps onto one Chaser object."""

    name: str  # customers | invoices | credit_notes: the API path and the sync tables' `object`
    mart: str  # the model whose rows are the payloads
    key: str  # the mart column Chaser matches rows on
    ledger_entity: str  # the `entity` of its rows in chaser_rejections
    partitioned: bool  # monthly by the document's date
    # SQL over the mart row `m`: true when Chaser would not show the document (never worth a
    # first send); None for objects that are always sent.
    invisible_sql: str | None = None
    # The mart column naming the customer the row waits for; None for customers themselves.
    customer_column: str | None = None

    @property
    def sync_asset(self) -> str:
        return f"sync_chaser_{self.name}"


CUSTOMERS = ChaserObject("customers", "chaser_customers", "external_id", "customer", False)
INVOICES = ChaserObject(
    "invoices",
    "chaser_invoices",
    "invoice_id",
    "invoice",
    True,
    invisible_sql="m.status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED')",
    customer_column="customer_external_id",
)
CREDIT_NOTES = ChaserObject(
    "credit_notes",
    "chaser_credit_notes",
    "credit_note_id",
    "credit_note",
    True,
    # Only ACTIVE credit notes appear on statements.
    invisible_sql="m.status <> 'ACTIVE'",
    customer_column="customer_external_id",
)

CHASER_OBJECTS: dict[str, ChaserObject] = {o.name: o for o in (CUSTOMERS, INVOICES, CREDIT_NOTES)}
