"""Sync stage in Dagster: the Chaser sync assets, the sync log, pending months, their checks,
and the Chaser resource."""
