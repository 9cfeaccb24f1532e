"""The local release pipeline: gate, canary, analysis against stable, promotion or automatic rollback.

Small modules with one job each:
- `state`     the release's durable record (phases, weights, analysis results) and its JSON form
- `store`     where that record lives (atomic JSON per model), the one-release-per-model lock, the JSON-lines log
- `traffic`   a bounded open-loop traffic generator for the demo (nothing else sends traffic locally)
- `deps`      the outside world the executor drives (serving, registry, gate, metrics, pushgateway), as protocols
- `executor`  the state machine: every step is persisted, so a killed release resumes from the last one
- `service`   start, resume, abort, status: what `mlp release` and the webhook's release process call
- `watch`     follow a release another process runs (the webhook's) to its end: `mlp release wait`
- `weights`   the one parser of VERSION=PERCENT splits (`mlp serve weights`, `mlp release weights`, `mlp render`)

The path of one release: the webhook receiver spawns `mlp release start` -> `service.start` resolves the version
-> `executor` pulls it once, gates that directory, starts the canary, analyses it (`core.canary`) against stable,
then moves the champion alias or rolls back.

The cluster runs the same steps as an Argo Rollouts canary rendered by `modules/k8s/release.py` from the same
`core.promql.AnalysisQueries` and the same `policy.canary` thresholds.
"""
