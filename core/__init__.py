"""The platform's specification: what every runtime renders from.

The typed policy, the metric contract and its PromQL, the canary judgement, alert rules and dashboards as data,
the cost model, and every name that crosses a process boundary. This package imports nothing else of the
repository; `services/`, `modules/`, `infra/` and `pipelines/` import it, never the other way round.
"""
