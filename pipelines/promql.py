"""Metric names and PromQL, written once.

The local release executor, the Argo Rollouts AnalysisTemplate, the Prometheus recording and
alerting rules and the Grafana dashboards all build their queries here, so the cluster and the
local runtime judge a canary by the same expression and the same threshold.

Model servers are scraped with the target labels ``model_name`` and ``model_version``
(file_sd locally, pod labels in the cluster), so every series below carries them.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# Drift job, pushed to the Pushgateway.
DRIFT_SCORE = "mlp_drift_share_of_drifted_features"

PREDICT_ENDPOINT = "/classify"


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

    def _sel(self, version: str, extra: str = "") -> str:
        sel = selector(self.model_name, version)
        return sel[:-1] + extra + "}" if extra else sel

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


def seconds_to_promql(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
