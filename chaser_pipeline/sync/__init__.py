"""Sync stage, without Dagster: which Chaser objects exist (`objects`), the state of what Chaser
confirmed (`journal`), the plan (`plan`), batching (`batches`), sending (`sender`), one object's
sync (`engine`), what it did (`report`), and what Chaser does not hold yet (`pending`)."""
