"""Every name that crosses a process boundary, declared once: routes, headers, buckets, alerts.

A server and its clients, a renderer and the object it renders, a rule and the runbook it links to all read the
name from here, so renaming one side cannot silently break the other. Environment variables live beside this
module in `core.env`; metric names and PromQL in `core.promql`.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- HTTP routes

PREDICT_ROUTE: Final = "/classify"  # the model server's and the gateway's prediction route
# The catalogue's public routes: `/v1/models/<name>/<task>` at the gateway (docs/catalogue.md), rewritten to the
# server's own `/<task>` route. PREDICT_ROUTE stays public too, for the policy's default model (compatibility).
MODEL_ROUTE_PREFIX: Final = "/v1/models"


def model_route(model_name: str, task: str) -> str:
    """The gateway's route of one catalogue model's task, e.g. `/v1/models/review-polarity-classifier/classify`."""
    return f"{MODEL_ROUTE_PREFIX}/{model_name}/{task}"


def server_route(task: str) -> str:
    """The model server's route for a task: `/classify` (PREDICT_ROUTE), `/embed`, `/generate`."""
    return f"/{task}"


# The BentoML service a task's server runs (`bentoml serve <ref>`): the local supervisor's command and the cluster
# container's. Both run on the CPU model-server image (services/model_server/Containerfile).
CLASSIFY_SERVICE_REF: Final = "services.model_server.service:ModelService"
GENERATE_SERVICE_REF: Final = "services.generate_server.service:GenerateService"
EMBED_SERVICE_REF: Final = "services.embed_server.service:EmbedService"
RAG_SERVICE_REF: Final = "services.rag_server.service:RagService"
SERVICE_REFS: Final = {
    "classify": CLASSIFY_SERVICE_REF,
    "generate": GENERATE_SERVICE_REF,
    "embed": EMBED_SERVICE_REF,
    "rag": RAG_SERVICE_REF,
}


def service_ref(task: str) -> str:
    """The service serving `task`; a clear error for a task the platform has no server for yet."""
    if task not in SERVICE_REFS:
        raise ValueError(f"no server serves task {task!r} yet (served: {sorted(SERVICE_REFS)})")
    return SERVICE_REFS[task]


# Where the gateway sends requests pinned to a version (internal keys only): the same prediction, counted apart by
# the server's metrics (label `endpoint`), so canary analyses and SLOs, which select PREDICT_ROUTE, never see them.
PINNED_PREDICT_ROUTE: Final = "/classify/pinned"
# Envoy appends this to the Host of every request it mirrors (RouteAction.RequestMirrorPolicy, which the Gateway
# API's RequestMirror filter becomes); the local shadow relay sends it too. A model server answers such a request on
# PINNED_PREDICT_ROUTE, so analyses and SLOs never count it, and logs it as mirrored, so drift never reads it twice.
SHADOW_HOST_SUFFIX: Final = "-shadow"


def is_mirrored_host(host: str) -> bool:
    """Whether a Host header is a mirror's: `api.example.com-shadow`, also with a port before or after the suffix."""
    name = host.strip().lower()
    return name.endswith(SHADOW_HOST_SUFFIX) or name.rsplit(":", 1)[0].endswith(SHADOW_HOST_SUFFIX)


LIVENESS_ROUTE: Final = "/livez"  # BentoML built-in: the process answers
READINESS_ROUTE: Final = "/readyz"  # BentoML built-in: the model is loaded and warmed up
HEALTH_ROUTE: Final = "/healthz"
METRICS_ROUTE: Final = "/metrics"
WEBHOOK_ROUTE: Final = "/mlflow"  # the registry-webhook receiver's delivery route
ALERTMANAGER_ROUTE: Final = "/alertmanager"  # the same receiver's route for Alertmanager's webhook deliveries
ALERTMANAGER_API_ALERTS: Final = "/api/v2/alerts"  # Alertmanager's own API: post and list alerts
ALERTMANAGER_API_GROUPS: Final = "/api/v2/alerts/groups"

# ---------------------------------------------------------------- HTTP headers

API_KEY_HEADER: Final = "X-API-Key"  # the client's key; the gateway strips it before the model server
VERSION_HEADER: Final = "X-Model-Version"  # set by the model server on every answer: which version answered
PIN_HEADER: Final = "X-Model-Version"  # sent by a client to the gateway: serve this live version only
REQUEST_ID_HEADER: Final = "X-Request-ID"  # set by the gateway, logged by the model server
MLFLOW_SIGNATURE_HEADER: Final = "X-MLflow-Signature"  # `v1,<base64 HMAC-SHA256>` of `<delivery id>.<ts>.<body>`
MLFLOW_TIMESTAMP_HEADER: Final = "X-MLflow-Timestamp"
MLFLOW_DELIVERY_ID_HEADER: Final = "X-MLflow-Delivery-Id"
# Alertmanager authenticates its webhook deliveries with `Authorization: Bearer <token>` (its http_config
# `authorization.credentials_file`); the receiver compares the token with its own copy.
AUTHORIZATION_HEADER: Final = "Authorization"
BEARER_SCHEME: Final = "Bearer"

# ---------------------------------------------------------------- object store

# Local bucket names; in the cluster each is `<prefix>-<suffix>-<account id>` (S3 names are global).
ARTIFACT_BUCKET: Final = "mlflow-artifacts"
INFERENCE_LOG_BUCKET: Final = "inference-logs"
ARTIFACT_BUCKET_SUFFIX: Final = "artifacts"
INFERENCE_LOG_BUCKET_SUFFIX: Final = "inference-logs"
# The cluster's Qdrant server writes its collection snapshots here (its own IRSA role; docs/rag.md).
QDRANT_SNAPSHOT_BUCKET_SUFFIX: Final = "qdrant-snapshots"

# ---------------------------------------------------------------- alerts (each has runbooks/<file>.md)

ALERT_LATENCY_BURN: Final = "ModelLatencySLOBurnRate"
ALERT_ERROR_BURN: Final = "ModelErrorSLOBurnRate"
ALERT_SERVER_DOWN: Final = "ModelServerDown"
ALERT_DRIFT: Final = "ModelDriftDetected"
ALERT_CANARY_FAILED: Final = "CanaryAnalysisFailed"
ALERT_SCALE_FROM_ZERO_SLOW: Final = "ModelScaleFromZeroSlow"
ALERT_LOG_DROPPED: Final = "InferenceLogSamplesDropped"
ALERT_GPU_MEMORY: Final = "GpuMemoryNearlyFull"
ALERT_GPU_IDLE: Final = "GpuUnderutilised"
ALERT_RETRAINED_GATE_FAILED: Final = "RetrainedCandidateFailedGate"
ALERT_GENERATION_SLOW: Final = "ModelGenerationSlow"
ALERT_CANARY_QUALITY: Final = "CanaryQualityDiverged"
ALERT_RAG_DEGRADED: Final = "RagAnswersDegraded"

# The drift alert's annotation holding the raw drift score (a retraining it starts records it as lineage).
DRIFT_SCORE_ANNOTATION: Final = "drift_score"

# Alertmanager receivers (core/alertmanager.py routes to them; the webhook receiver logs which one delivered).
RECEIVER_PAGE: Final = "mlp-page"  # severity=page: wakes someone up
RECEIVER_TICKET: Final = "mlp-ticket"  # everything else: looked at in working hours
# Alerts the platform acts on (ModelDriftDetected starts a retraining) also go here: the platform's own receiver,
# which acts only on what this receiver delivered (services/webhook/actions.py).
RECEIVER_ACT: Final = "mlp-act"
# The bearer token Alertmanager presents to the platform's receiver: the secret store's (local) and Secrets
# Manager's (cluster) name for it.
ALERT_WEBHOOK_TOKEN_SECRET: Final = "alertmanager_webhook_token"
# The cluster's paging and chat destinations: properties of the Secrets Manager secret `<prefix>/alertmanager/
# receivers`, set by the operator (runbooks/alerts-not-delivered.md), synced into Alertmanager by an ExternalSecret.
PAGERDUTY_ROUTING_KEY_SECRET: Final = "pagerduty_routing_key"
SLACK_WEBHOOK_URL_SECRET: Final = "slack_webhook_url"

RUNBOOKS: Final[dict[str, str]] = {
    ALERT_LATENCY_BURN: "model-latency-slo-burn-rate",
    ALERT_ERROR_BURN: "model-error-slo-burn-rate",
    ALERT_SERVER_DOWN: "model-server-down",
    ALERT_DRIFT: "model-drift-detected",
    ALERT_CANARY_FAILED: "canary-analysis-failed",
    ALERT_SCALE_FROM_ZERO_SLOW: "model-scale-from-zero-slow",
    ALERT_LOG_DROPPED: "inference-log-samples-dropped",
    ALERT_GPU_MEMORY: "gpu-memory-nearly-full",
    ALERT_GPU_IDLE: "gpu-underutilised",
    ALERT_RETRAINED_GATE_FAILED: "retrained-candidate-failed-gate",
    ALERT_GENERATION_SLOW: "model-generation-slow",
    ALERT_CANARY_QUALITY: "canary-quality-diverged",
    ALERT_RAG_DEGRADED: "rag-answers-degraded",
}
"""Alert name -> runbook file (`runbooks/<file>.md`)."""

# ---------------------------------------------------------------- the registry's identities (MLflow basic auth)

# MLflow's own client variables: every client authenticates through these (docs/security-registry.md).
MLFLOW_USERNAME_VAR: Final = "MLFLOW_TRACKING_USERNAME"
MLFLOW_PASSWORD_VAR: Final = "MLFLOW_TRACKING_PASSWORD"
MLFLOW_AUTH_CONFIG_VAR: Final = "MLFLOW_AUTH_CONFIG_PATH"  # the server's auth ini
MLFLOW_AUTH_ADMIN_PASSWORD_VAR: Final = "MLFLOW_AUTH_ADMIN_PASSWORD"  # the server's first-start admin password
MLFLOW_FLASK_SECRET_KEY_VAR: Final = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # the auth app's CSRF key

REGISTRY_ADMIN: Final = "mlp-admin"  # users and permissions, webhooks; nothing else uses it
REGISTRY_RELEASE_BOT: Final = "mlp-release-bot"  # registers versions, sets aliases, tags: MANAGE on the model
REGISTRY_MODEL_SERVER: Final = "mlp-model-server"  # model servers: READ
REGISTRY_READER: Final = "mlp-reader"  # drift check, dashboards, `mlp model list`: READ

# The artifact verification key in the cluster: a ConfigMap in the serving namespace holding the public key (base64
# DER, from KMS GetPublicKey) under this key; the model server reads it into `MLP_ARTIFACT_PUBLIC_KEY`.
ARTIFACT_KEY_CONFIGMAP: Final = "mlp-artifact-signing"
ARTIFACT_KEY_CONFIGMAP_KEY: Final = "public-key"

REGISTRY_USERS: Final[dict[str, str]] = {
    REGISTRY_ADMIN: "mlflow_admin_password",
    REGISTRY_RELEASE_BOT: "mlflow_release_bot_password",
    REGISTRY_MODEL_SERVER: "mlflow_model_server_password",
    REGISTRY_READER: "mlflow_reader_password",
}
"""Registry user -> the name of its password in the secret store (local) and in Secrets Manager (cluster)."""

# ---------------------------------------------------------------- where the workflows that reach MLflow run

# Runner scale sets of actions-runner-controller in each environment's cluster (modules/runners.py): a workflow
# job that talks to MLflow says `runs-on: <kind>-<environment>`, so MLflow needs no public endpoint
# (docs/decisions/0143-release-jobs-on-in-cluster-runners.md). One scale set per environment: each cluster
# registers its own, and a job for `prod` can only be picked up by prod's runners.
RELEASE_RUNNERS: Final = "mlp-release"  # the gate, the rollout, the registry record (the release bot's identity)
DRIFT_RUNNERS: Final = "mlp-drift"  # the scheduled drift check (the reader's identity)


def runner_scale_set(kind: str, environment: str) -> str:
    """The scale set name the runners register with and the workflows' `runs-on` names: `mlp-release-prod`."""
    if kind not in (RELEASE_RUNNERS, DRIFT_RUNNERS):
        raise ValueError(f"unknown runner kind {kind!r}; declared: {RELEASE_RUNNERS}, {DRIFT_RUNNERS}")
    return f"{kind}-{environment}"
