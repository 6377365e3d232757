"""The Chaser objects the pipeline keeps in step, and how each maps onto its mart.

One word throughout: a Chaser *object* is a kind of record Chaser holds (customers, contact
persons, invoices, credit notes, overpayments). Its name is the API's path segment and the value
of the `object` column in the sync tables.
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
    # The ledger table its rows come from (a key deleted there is withdrawn from Chaser).
    ledger_table: str = ""
    # SQL over the mart row `m`: true when Chaser would not show the document (never worth a
    # first send); None for objects that are always sent.
    invisible_sql: str | None = None
    # The mart column naming the customer the row waits for; None for customers themselves.
    customer_column: str | None = None
    # The mart column that routes a row to its parent's endpoint (contact persons go to their
    # customer's bulk endpoint); it is hashed with the payload but not sent. None: no routing.
    route_column: str | None = None
    # The status a routed row is sent with under the parent it left (a contact person moved to
    # another customer is ARCHIVED under the old one, which would otherwise keep sending it
    # that customer's reminders). None: rows do not move between parents.
    left_route_status: str | None = None
    # SQL over the mart row `m`: how much Chaser chases on this payload (the amount it asks for,
    # minus the credit that lowers a statement; 1 for an active customer). A change that lowers
    # it stops or reduces chasing and is sent before anything else.
    chase_sql: str = "0"
    # The status that withdraws a row the ledger deleted (DELETED, ARCHIVED); None: withdrawals
    # of held-back rows are not sent for this object.
    withdrawn_status: str | None = None

    @property
    def sync_asset(self) -> str:
        return f"sync_chaser_{self.name}"

    @property
    def source_table(self) -> str:
        return self.ledger_table or self.name


CUSTOMERS = ChaserObject(
    "customers",
    "chaser_customers",
    "external_id",
    "customer",
    False,
    # archiving a customer stops every reminder to it
    chase_sql="case when m.status = 'ACTIVE' then 1 else 0 end",
    withdrawn_status="ARCHIVED",
)
INVOICES = ChaserObject(
    "invoices",
    "chaser_invoices",
    "invoice_id",
    "invoice",
    True,
    invisible_sql="m.status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED')",
    customer_column="customer_external_id",
    # Chaser chases the amount due of an AUTHORISED invoice; PAID, VOIDED, DELETED: nothing
    chase_sql="case when m.status = 'AUTHORISED' then m.amount_due else 0 end",
    withdrawn_status="DELETED",
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
    # credit left on an ACTIVE credit note lowers what a statement asks for
    chase_sql="case when m.status = 'ACTIVE' then -m.remaining_credit else 0 end",
    withdrawn_status="DELETED",
)

CONTACT_PERSONS = ChaserObject(
    "contact_persons",
    "chaser_contact_persons",
    "external_id",
    "contact_person",
    False,
    ledger_table="contacts",
    # an archived contact person that was never sent is not worth a request
    invisible_sql="m.status <> 'ACTIVE'",
    customer_column="customer_external_id",
    # one bulk request per customer: the customer's endpoint takes its contact persons
    route_column="customer_external_id",
    left_route_status="ARCHIVED",
    # archiving a contact person stops reminders to that address
    chase_sql="case when m.status = 'ACTIVE' then 1 else 0 end",
)
OVERPAYMENTS = ChaserObject(
    "overpayments",
    "chaser_overpayments",
    "overpayment_id",
    "overpayment",
    True,
    ledger_table="payments",
    # unapplied cash on an ACTIVE overpayment lowers what a statement asks for
    invisible_sql="m.status <> 'ACTIVE'",
    customer_column="customer_external_id",
    chase_sql="case when m.status = 'ACTIVE' then -m.remaining_credit else 0 end",
    withdrawn_status="DELETED",
)

# In sending order: customers before anything that names them.
CHASER_OBJECTS: dict[str, ChaserObject] = {
    o.name: o for o in (CUSTOMERS, CONTACT_PERSONS, INVOICES, CREDIT_NOTES, OVERPAYMENTS)
}
