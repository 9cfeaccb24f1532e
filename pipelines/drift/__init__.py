"""Drift detection on logged inferences.

`features` turns texts (and the served predictions) into a small table of monitored features, `reference` builds
and caches the same table for the training split with the version's own model, `logs` reads (and, for tests and
fixtures, writes) the inference log in S3, `report` compares current against reference with Evidently,
`push` sends the result to the Pushgateway, `check` ties them together for `mlp drift check`, and `demo` drives
real traffic through the gateway for `make demo`. Docs: docs/drift.md.
"""
