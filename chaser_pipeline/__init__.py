"""chaser-pipeline: keeps Chaser in step with a company's ledger, as a Dagster code location."""

__version__ = "0.1.0"
