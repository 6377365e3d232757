"""The source warehouse as a Dagster resource (CHASER_WAREHOUSE_URL, bound with `EnvVar`)."""

import dagster as dg

from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.settings import load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The source warehouse (CHASER_WAREHOUSE_URL); empty means the bundled demo warehouse."""

    url: str = ""

    def get(self) -> Warehouse:
        return Warehouse.from_url(self.url or None)


@dg.definitions
def resources() -> dg.Definitions:
    """`warehouse`: the URL may carry a password, so the UI shows only the variable's name."""
    settings = load_settings()
    warehouse = (
        WarehouseResource(url=dg.EnvVar("CHASER_WAREHOUSE_URL"))
        if settings.warehouse is not None
        else WarehouseResource()
    )
    return dg.Definitions(resources={"warehouse": warehouse})
