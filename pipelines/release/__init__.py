"""The local release pipeline: gate, canary, analysis against stable, promotion or automatic rollback.

Small modules with one job each:
- `state`     the release's durable record (phases, weights, analysis results) and its JSON form
- `store`     where that record lives (atomic JSON per model), the one-release-per-model lock, the JSON-lines log
- `analysis`  canary-vs-stable measurements from Prometheus and the verdict rules (pass / fail / inconclusive)
- `traffic`   a bounded open-loop traffic generator for the demo (nothing else sends traffic locally)
- `deps`      the outside world the executor drives (serving, registry, gate, metrics, pushgateway), as protocols
- `executor`  the state machine: every step is persisted, so a killed release resumes from the last one

The cluster runs the same steps as an Argo Rollouts canary rendered by `modules/k8s/release.py` from the same
`core.promql.AnalysisQueries` and the same `policy.canary` thresholds.
"""
