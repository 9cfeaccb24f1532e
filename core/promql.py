"""Metric names and PromQL, written once.

The local release executor, the Argo Rollouts AnalysisTemplate, the Prometheus recording and
alerting rules and the Grafana dashboards all build their queries here, so the cluster and the
local runtime judge a canary by the same expression and the same threshold.

Model servers are scraped with the target labels ``model_name`` and ``model_version``
(file_sd locally, pod labels in the cluster), so every series below carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from core import contracts
from core.policy import Task

# BentoML 1.4 built-in HTTP metrics (namespace "bentoml_service").
REQUEST_TOTAL = "bentoml_service_request_total"
REQUEST_DURATION = "bentoml_service_request_duration_seconds"
REQUEST_IN_PROGRESS = "bentoml_service_request_in_progress"
ADAPTIVE_BATCH_SIZE = "bentoml_service_adaptive_batch_size"

# The platform's own model metrics (services/model_server).
INFERENCES_TOTAL = "mlp_model_inferences_total"  # texts classified
MODEL_ERRORS_TOTAL = "mlp_model_errors_total"  # label error_class
REQUEST_BATCH_SIZE = "mlp_model_request_batch_size"  # histogram: texts per request
PREDICTION_CONFIDENCE = "mlp_model_prediction_confidence"  # histogram of top score
INFERENCE_LOG_DROPPED = "mlp_inference_log_dropped_total"
MODEL_LOADED = "mlp_model_loaded"  # gauge 1 once loaded and warmed up
# Unix time the serving process loaded its model: it changes when the server restarts (a crash supervisord or the
# kubelet restarted), which `up` can miss when the restart is quicker than a scrape interval.
MODEL_SERVER_STARTED = "mlp_model_server_start_time_seconds"
INFERENCE_BATCH_SIZE = "mlp_model_inference_batch_size"  # histogram: texts per model call (adaptive batching)

# The generate server's (services/generate_server): the LLM serving measures.
GENERATE_TTFT = "mlp_generate_time_to_first_token_seconds"  # histogram: request start to the first token
GENERATE_INTER_TOKEN = "mlp_generate_inter_token_seconds"  # histogram: between two generated tokens
GENERATE_TOKENS_TOTAL = "mlp_generate_tokens_total"  # label kind: prompt | completion
SHADOW_REQUESTS_TOTAL = "mlp_shadow_requests_total"  # mirrored requests; label outcome: answered|error|timeout|dropped
SHADOW_QUEUE = "mlp_shadow_queue_requests"  # mirrored requests waiting for the candidate (local relay)
GENERATE_TOKENS_PER_SECOND = "mlp_generate_tokens_per_second"  # histogram: decode speed of each request
# The RAG server's (services/rag_server): each step's time, and how each question was answered.
RAG_STAGE_SECONDS = "mlp_rag_stage_seconds"  # histogram, label stage: embed | retrieve | generate | total
RAG_ANSWERS_TOTAL = "mlp_rag_answers_total"  # label mode: generated | retrieval_only | failed

# Drift job, pushed to the Pushgateway.
DRIFT_SCORE = "mlp_drift_share_of_drifted_features"
DRIFT_SAMPLES = "mlp_drift_samples"  # logged texts the last check scored
DRIFT_LAST_RUN = "mlp_drift_last_run_timestamp_seconds"  # unix time of the last completed check

# Release executor, pushed to the Pushgateway: 1 when the last canary analysis of (model_name, model_version)
# failed and the release rolled back, 0 otherwise (the executor pushes 0 when a new release starts).
RELEASE_ANALYSIS_FAILED = "mlp_release_analysis_failed"
# Release executor, pushed to the Pushgateway once per model: 1 when the last retrained candidate (`model_version`)
# failed the promotion gate, 0 when one passed. The loop does not retry: a person looks (a ticket).
RETRAINED_GATE_FAILED = "mlp_retrained_candidate_gate_failed"
# Release executor, pushed to the Pushgateway per (model_name, model_version) after a shadow phase, with label
# `stable_version`: 1 when the candidate's answers diverged from stable's beyond `canary.quality` (rolled back), and
# the paired comparison's measures (pipelines/shadow/compare.py) beside it.
RELEASE_QUALITY_FAILED = "mlp_release_quality_failed"
SHADOW_MEASURES: dict[str, str] = {
    "pairs": "mlp_shadow_pairs",
    "agreement": "mlp_shadow_agreement",
    "worst_flip_rate": "mlp_shadow_worst_flip_rate",
    "label_psi": "mlp_shadow_label_psi",
    "mean_confidence_delta": "mlp_shadow_mean_confidence_delta",
}

# Argo Rollouts controller (cluster): `rollout_info{namespace, name, phase}` is 1 for the rollout's current phase.
# A failed AnalysisRun aborts the rollout, which stays `Degraded` until the next release; the Rollout is named after
# the model (modules/k8s/release.py).
ARGO_ROLLOUT_INFO = "rollout_info"
ARGO_DEGRADED_PHASE = "Degraded"

# Scrape jobs (file_sd `job` label locally, ServiceMonitor/PodMonitor job in the cluster).
MODEL_SERVER_JOB = "model-server"
GATEWAY_EXPORTER_JOB = "gateway"
PROCESS_EXPORTER_JOB = "process"

# Gateway access log, turned into metrics by mtail (infra/local/mtail/gateway.mtail).
GATEWAY_REQUESTS_TOTAL = "mlp_gateway_requests_total"  # labels upstream_version, status, api_key_name
GATEWAY_REQUEST_DURATION = "mlp_gateway_request_duration_seconds"  # histogram, label upstream_version

# CPU and memory per model server. Local: prometheus-process-exporter groups each `bentoml serve` (and its
# workers) by its port. Cluster: cAdvisor container metrics joined to the serving pods.
PROCESS_CPU_SECONDS = "namedprocess_namegroup_cpu_seconds_total"
PROCESS_MEMORY_BYTES = "namedprocess_namegroup_memory_bytes"  # label memtype="resident"
CONTAINER_CPU_SECONDS = "container_cpu_usage_seconds_total"
CONTAINER_MEMORY_WORKING_SET = "container_memory_working_set_bytes"

# Scale from zero (cluster): kube-state-metrics pod timestamps, for pods of the serving namespace.
SERVING_NAMESPACE = "model-serving"
POD_CREATED = "kube_pod_created"
POD_READY_TIME = "kube_pod_status_ready_time"
POD_READY = "kube_pod_status_ready"  # label condition="true"

# GPUs (cluster): NVIDIA DCGM exporter.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB

PREDICT_ENDPOINT = contracts.PREDICT_ROUTE
# Every task's prediction route (a PromQL regex, fully anchored): the pinned route is not among them.
PREDICT_ENDPOINTS = "|".join(contracts.server_route(task) for task in get_args(Task))

# Request-duration buckets the model servers export (BentoML `metrics.duration.buckets`): a fine ladder
# plus the SLO thresholds, because the latency burn-rate rules read the bucket at exactly
# `slo.latency_p95_ms` (docs/decisions/0092-burn-rate-alerts-from-slow-request-ratio.md).
# Below 100 ms, where these models answer, adjacent bounds are at most 1.2x apart: histogram_quantile interpolates
# inside a bucket, so a ladder coarser than the canary's `max_latency_ratio` (1.3) would make one request crossing a
# bound look like a latency regression (a 10 -> 15 ms bucket turned a 10 ms p95 into 14.2 ms, ratio 1.42).
DEFAULT_DURATION_BUCKETS = (
    0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01, 0.012, 0.014, 0.016, 0.018, 0.02,
    0.024, 0.028, 0.032, 0.036, 0.04, 0.048, 0.056, 0.064, 0.072, 0.08, 0.09, 0.1,
    0.12, 0.15, 0.2, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def duration_buckets(*slo_seconds: float) -> list[float]:
    """Default buckets with each SLO threshold (seconds) added, e.g. duration_buckets(0.2, 0.5)."""
    return sorted(set(DEFAULT_DURATION_BUCKETS) | {round(s, 6) for s in slo_seconds})


def selector(model_name: str, model_version: str | int, endpoint: bool = True) -> str:
    parts = [f'model_name="{model_name}"', f'model_version="{model_version}"']
    if endpoint:
        parts.append(f'endpoint="{PREDICT_ENDPOINT}"')
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class AnalysisQueries:
    """The three measurements a canary analysis takes over one window.

    ``{version}`` stays a placeholder in the templates so the Argo AnalysisTemplate can bind it
    to an argument; ``for_version`` fills it in for the local executor.
    """

    model_name: str
    window: str  # a PromQL duration such as "60s" or "30m"
    endpoint: str = PREDICT_ENDPOINT  # the model's task route on its servers (`contracts.server_route(task)`)

    def _sel(self, version: str, extra: str = "") -> str:
        sel = selector(self.model_name, version, endpoint=False)[:-1] + f',endpoint="{self.endpoint}"'
        return sel + extra + "}"

    def request_count(self, version: str) -> str:
        return f"sum(increase({REQUEST_TOTAL}{self._sel(version)}[{self.window}]))"

    def error_rate(self, version: str) -> str:
        server_errors = self._sel(version, ',http_response_code=~"5.."')
        errors = f"sum(increase({REQUEST_TOTAL}{server_errors}[{self.window}]))"
        return f"({errors} or vector(0)) / {self.request_count(version)}"

    def latency_p95_seconds(self, version: str) -> str:
        return (
            f"histogram_quantile(0.95, sum by (le) "
            f"(rate({REQUEST_DURATION}_bucket{self._sel(version)}[{self.window}])))"
        )

    def up(self, version: str) -> str:
        return f"max(up{selector(self.model_name, version, endpoint=False)})"

    def restarts(self, version: str, seconds: int) -> str:
        """Server restarts over the last `seconds` (0 when none, or before the first scrape)."""
        started = f"{MODEL_SERVER_STARTED}{selector(self.model_name, version, endpoint=False)}"
        return f"sum(changes({started}[{seconds}s])) or vector(0)"


def seconds_to_promql(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
