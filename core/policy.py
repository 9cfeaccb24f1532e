"""The single policy config: SLOs, promotion criteria, canary, gateway, scaling, drift, prices.

Every threshold, limit and price the platform uses is written once in ``policy.yaml`` and read
through this module. Both runtimes (local and cluster) render from the same object, so they
cannot disagree. ``mlp policy schema`` exports the JSON schema (``policy.schema.json``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core import env

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_PATH = REPO_ROOT / "policy.yaml"

Port = Annotated[int, Field(ge=1024, le=65535)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveMs = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    """Base: unknown keys are errors, so a typo in policy.yaml never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Ports(Strict):
    """Loopback ports of the local runtime."""

    postgres: Port = 15432
    s3: Port = 18333
    mlflow: Port = 15000
    gateway: Port = 18080
    prometheus: Port = 19090
    node_exporter: Port = 19100
    pushgateway: Port = 19091
    webhook: Port = 18090
    supervisor: Port = 19001
    nginx_exporter: Port = 19113
    process_exporter: Port = 19256
    model_server_base: Port = 13000
    model_server_slots: int = Field(default=8, ge=2, le=64, description="How many model servers may run at once")

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        fixed = [
            self.postgres,
            self.s3,
            self.mlflow,
            self.gateway,
            self.prometheus,
            self.node_exporter,
            self.pushgateway,
            self.webhook,
            self.supervisor,
            self.nginx_exporter,
            self.process_exporter,
        ]
        if len(set(fixed)) != len(fixed):
            raise ValueError("ports: every service needs its own port")
        servers = range(self.model_server_base, self.model_server_base + self.model_server_slots)
        clash = [p for p in fixed if p in servers]
        if clash:
            raise ValueError(f"ports: {clash} fall inside the model server range {servers.start}-{servers.stop - 1}")
        return self


class Slo(Strict):
    """Service level objectives per model version, as users see them through the gateway."""

    latency_p95_ms: PositiveMs = 200
    latency_p99_ms: PositiveMs = 500
    error_rate: Fraction = Field(default=0.01, description="Share of requests answered 5xx")
    availability_target: Fraction = Field(default=0.995, description="Error budget = 1 - target over 30 days")
    burn_rate_windows: list[tuple[str, str, float]] = Field(
        default=[("1h", "5m", 14.4), ("6h", "30m", 6.0)],
        description="(long window, short window, burn-rate factor) pairs for multi-window alerts",
    )


class Promotion(Strict):
    """What a candidate must show before it may serve traffic (the `gate` command)."""

    baseline: Literal["tfidf_logreg", "majority_class"] = "tfidf_logreg"
    min_accuracy_margin_over_baseline: float = Field(default=0.0, ge=-1, le=1)
    max_p95_latency_ms: PositiveMs = 200
    latency_requests: int = Field(default=200, ge=20, description="Single requests timed for p50/p95")
    latency_warmup_requests: int = Field(default=20, ge=0)
    regression_tolerance_overall: Fraction = 0.01
    regression_tolerance_per_class: Fraction = 0.03
    metric: Literal["accuracy", "macro_f1"] = "accuracy"


class CanaryAnalysis(Strict):
    """How the canary is judged against stable; the same numbers render into Argo Rollouts."""

    window_seconds: int = Field(default=1800, ge=10, description="Production analysis window")
    local_window_seconds: int = Field(default=60, ge=10, description="Local demo window: shorter, same logic")
    interval_seconds: int = Field(default=60, ge=5)
    local_interval_seconds: int = Field(default=10, ge=2)
    max_latency_ratio: float = Field(default=1.3, gt=1.0, description="Roll back if canary p95 > ratio * stable p95")
    max_error_rate: Fraction = 0.01
    min_requests: int = Field(default=50, ge=1, description="Fewer canary requests in a window = inconclusive")
    on_inconclusive: Literal["extend", "abort"] = "extend"
    max_extensions: int = Field(default=2, ge=0)
    failure_limit: int = Field(default=1, ge=1, description="Failed measurements before rollback")


class Canary(Strict):
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default=[10, 100])
    analysis: CanaryAnalysis = CanaryAnalysis()
    drain_grace_seconds: int = Field(default=30, ge=0)
    local_drain_grace_seconds: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _steps_rise_to_full(self) -> Canary:
        if self.steps != sorted(self.steps) or len(set(self.steps)) != len(self.steps):
            raise ValueError("canary.steps must strictly increase")
        if self.steps[-1] != 100:
            raise ValueError("canary.steps must end at 100 (full promotion)")
        return self


class ApiKey(Strict):
    """A gateway client. The key itself is a secret: only its SHA-256 lives outside the secret store."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    rate_per_second: float = Field(gt=0)
    burst: int = Field(ge=0)


class Gateway(Strict):
    api_keys: list[ApiKey] = Field(
        default=[
            ApiKey(name="demo", rate_per_second=200, burst=200),
            ApiKey(name="loadtest", rate_per_second=1000, burst=500),
            ApiKey(name="limited", rate_per_second=2, burst=2),
        ]
    )
    max_request_bytes: int = Field(default=65536, ge=1024)
    retry_on_stable: bool = True
    upstream_timeout_seconds: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _unique_names(self) -> Gateway:
        names = [k.name for k in self.api_keys]
        if len(names) != len(set(names)):
            raise ValueError("gateway.api_keys: names must be unique")
        return self


class Serving(Strict):
    max_batch_size: int = Field(default=32, ge=1, le=1024, description="Texts per request")
    max_text_chars: int = Field(default=2000, ge=1)
    max_seq_tokens: int = Field(default=128, ge=8, le=512)
    ort_intra_op_threads: int = Field(default=1, ge=1)
    ort_inter_op_threads: int = Field(default=1, ge=1)
    batching_max_batch_size: int = Field(default=64, ge=1)
    batching_max_latency_ms: int = Field(default=1000, ge=10, description="Too small returns 503 under bursts")
    workers: int = Field(default=1, ge=1)
    inference_log_sample_rate: Fraction = 1.0
    inference_log_queue_size: int = Field(default=1000, ge=1)
    inference_log_flush_records: int = Field(default=200, ge=1)
    inference_log_flush_seconds: float = Field(default=5.0, gt=0)
    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "768Mi"
    memory_limit: str = "1536Mi"
    gpu_memory_request: str = "2Gi"
    gpu_memory_limit: str = "4Gi"


class Scaling(Strict):
    min_replicas: int = Field(default=2, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    target_in_flight_per_replica: int = Field(default=8, ge=1)
    scale_to_zero_idle_seconds: int = Field(default=300, ge=30)
    scale_from_zero_alert_seconds: int = Field(default=60, ge=1, description="Alert when a cold start is slower")
    cold_start_timeout_seconds: int = Field(
        default=240, ge=30, description="How long a request to a scaled-to-zero endpoint may wait for a pod"
    )
    non_critical_endpoints: list[str] = Field(default=["batch-classifier"])

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("scaling.min_replicas must not exceed scaling.max_replicas")
        if self.cold_start_timeout_seconds <= self.scale_from_zero_alert_seconds:
            raise ValueError(
                "scaling.cold_start_timeout_seconds must exceed scaling.scale_from_zero_alert_seconds: a cold start "
                "slow enough to alert must still be answered"
            )
        return self


class Drift(Strict):
    threshold: Fraction = Field(default=0.5, description="Share of drifted features that raises the alert")
    min_samples: int = Field(default=100, ge=10)
    max_samples: int = Field(
        default=2000, ge=10, description="Logged texts scored per check (uniform sample): bounds cost and test power"
    )
    stattest_threshold: Fraction = 0.05
    schedule_cron: str = "0 * * * *"
    window_hours: int = Field(default=24, ge=1)


class Alerting(Strict):
    """Alert thresholds beyond the SLOs (core/rules.py renders them for both runtimes)."""

    local_scrape_interval_seconds: int = Field(default=5, ge=1, description="Local Prometheus: short canary windows")
    model_server_down_for_seconds: int = Field(default=60, ge=0)
    inference_log_drop_window_seconds: int = Field(default=300, ge=30)
    cold_start_lookback_seconds: int = Field(default=900, ge=60, description="Slow pod starts alert this long")
    gpu_memory_used_ratio: Fraction = Field(default=0.9, description="GPU framebuffer share that alerts")
    gpu_underutilised_percent: float = Field(default=20, ge=0, le=100, description="Paying for an idle GPU")
    gpu_underutilised_window_seconds: int = Field(default=3600, ge=300)


class InstancePrice(Strict):
    usd_per_hour: float = Field(gt=0)
    vcpu: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    gpu: str | None = None
    source: str
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class GpuThroughput(Strict):
    """Published (not locally measured) GPU throughput of the served encoder: an estimate until measured on a GPU."""

    inferences_per_second: float = Field(gt=0, description="Texts per second one GPU serves at the latency SLO")
    basis: str = Field(description="How the figure follows from the published one")
    source: str
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class Prices(Strict):
    """On-demand prices (us-east-1, Linux). Update with source and date; the cost report cites them."""

    region: str = "us-east-1"
    instances: dict[str, InstancePrice]
    cpu_instance: str = "c7i.xlarge"
    gpu_instance: str = "g5.xlarge"
    monthly_hours: float = 730
    other: dict[str, float] = Field(default_factory=dict, description="Named unit prices in USD (see keys)")
    other_source: str = ""
    gpu_throughput: dict[str, GpuThroughput] = Field(
        default_factory=dict, description="Per GPU instance type: estimated inferences/s (the cost report cites it)"
    )

    @model_validator(mode="after")
    def _known_instances(self) -> Prices:
        for role, name in (("cpu_instance", self.cpu_instance), ("gpu_instance", self.gpu_instance)):
            if name not in self.instances:
                raise ValueError(f"prices.{role}: {name!r} has no entry in prices.instances")
        return self


class Release(Strict):
    model_name: str = "review-polarity-classifier"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    candidate_alias: str = "candidate"
    webhook_max_skew_seconds: int = Field(default=300, ge=1)


class Policy(Strict):
    ports: Ports = Ports()
    slo: Slo = Slo()
    promotion: Promotion = Promotion()
    canary: Canary = Canary()
    gateway: Gateway = Gateway()
    serving: Serving = Serving()
    scaling: Scaling = Scaling()
    drift: Drift = Drift()
    alerting: Alerting = Alerting()
    prices: Prices
    release: Release = Release()


class PolicyError(ValueError):
    """policy.yaml is missing or invalid; the message names the field."""


def _describe(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: {len(err.errors())} invalid value(s)"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {field}: {e['msg']} (got {e.get('input')!r})")
    lines.append("Fix the field(s) above; `mlp policy schema` prints every field with its bounds.")
    return "\n".join(lines)


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate the policy; raise PolicyError naming each bad field."""
    path = path or env.POLICY.get() or DEFAULT_POLICY_PATH
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: not found. Set {env.POLICY.name} or restore policy.yaml from git.") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    raw = _offset_ports(raw or {}, env.PORT_OFFSET.get())
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, path)) from exc


def _offset_ports(raw: dict[str, Any], offset: int) -> dict[str, Any]:
    """MLP_PORT_OFFSET shifts every local port, so two local environments can share one machine
    (with MLP_STATE_DIR set apart too): parallel CI jobs, or a test run beside a demo."""
    if not offset or not isinstance(raw.get("ports"), dict):
        return raw
    shifted = {k: v + offset for k, v in raw["ports"].items() if isinstance(v, int) and k != "model_server_slots"}
    ports = {**raw["ports"], **shifted}
    return {**raw, "ports": ports}


@functools.cache
def policy() -> Policy:
    """The policy for this process (read once)."""
    return load_policy()


def json_schema() -> dict[str, object]:
    return Policy.model_json_schema()
