"""The local runtime, all of it: real servers as supervised processes on loopback.

- `stack`: every program, listed in start order, and `mlp env up`'s steps; one module per program: `postgres`,
  `s3`, `mlflow`, `model_servers` (one `bentoml serve` per live version), `gateway` (nginx, its config rendered by
  `nginx`, API keys hashed by `njs/auth.js`), `prometheus` (and its
  exporters, the Pushgateway), `webhook` (the registry-webhook receiver and its MLflow registration);
- `serving`: the serving controller, start a version's server then route to it (`mlp serve`, the release executor);
- `supervisor` (supervisord programs and health), `secrets` (the secret store, `exec_with_secrets`), `paths` (the
  state folder), `files` (atomic state files and locks).
"""
