"""The Dagster objects, one folder per stage: ledger (extract), models, chaser_sync, automation.

Loaded by `chaser_pipeline.definitions` with `dg.load_from_defs_folder`; every module here builds
its objects in a `@dg.definitions` function, so nothing is read or built at import.
"""
