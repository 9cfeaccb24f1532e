"""The single policy config: SLOs, promotion criteria, canary, gateway, scaling, drift, prices.

Every threshold, limit and price the platform uses is written once in ``policy.yaml`` and read
through this module. Both runtimes (local and cluster) render from the same object, so they
cannot disagree. ``mlp policy schema`` exports the JSON schema (``policy.schema.json``).

The models carry types, bounds and meanings, never values: no field has a default, so a value set
here could never disagree with the file (tests/core/test_policy_values_written_once.py checks both).
Each field's ``description`` is its meaning in ``docs/policy.md``, which ``mlp policy docs --write``
generates from the schema.
Code that needs a variant of the policy loads ``policy.yaml`` and uses ``model_copy(update=...)``.
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
    """Base: unknown keys are errors, so a typo in policy.yaml never passes silently. No field has a default:
    policy.yaml sets every value, and only there (a missing key is an error naming the field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# A catalogue model's own servers: the version serving, and a candidate beside it during a release.
CATALOGUE_SERVER_SLOTS = 2


class Ports(Strict):
    """Loopback ports of the local runtime. Every service has its own port, and none falls inside the model
    server range (`model_server_base` .. `model_server_base + model_server_slots - 1`). `MLP_PORT_OFFSET` shifts
    them all (except `model_server_slots`)."""

    postgres: Port = Field(description="PostgreSQL (MLflow's backend store)")
    s3: Port = Field(description="S3-compatible object store (artifacts, inference logs)")
    mlflow: Port = Field(description="MLflow tracking server and model registry")
    gateway: Port = Field(description="Inference gateway (nginx), HTTPS: the one address clients call")
    gateway_http: Port = Field(description="Gateway's plain-HTTP port: answers 308 to the HTTPS port, nothing else")
    prometheus: Port = Field(description="Prometheus")
    node_exporter: Port = Field(description="Prometheus node exporter (host CPU, memory, disk)")
    pushgateway: Port = Field(description="Prometheus Pushgateway (drift and release jobs push here)")
    webhook: Port = Field(description="Registry webhook receiver (MLflow alias events start releases)")
    supervisor: Port = Field(description="supervisord's HTTP interface (starts and stops the local programs)")
    nginx_exporter: Port = Field(description="Gateway metrics exporter")
    process_exporter: Port = Field(description="Process exporter (CPU and memory per model server)")
    alertmanager: Port = Field(description="Alertmanager (routes Prometheus alerts to the receivers)")
    shadow_relay: Port = Field(
        description="Shadow relay: takes the gateway's mirrored requests at once and sends them to the candidate"
    )
    model_server_base: Port = Field(description="First model server port: slot `i` listens on base + i")
    model_server_slots: int = Field(ge=2, le=64, description="How many model servers may run at once")
    catalogue_server_base: Port = Field(
        description="First port of the catalogue servers: the i-th model of task `generate`, `embed` or `rag` in the "
        "catalogue serves on base + i, and a second version beside it during a release on base + n + i (n: how many "
        "such models)"
    )

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        fixed = [
            self.postgres,
            self.s3,
            self.mlflow,
            self.gateway,
            self.gateway_http,
            self.prometheus,
            self.node_exporter,
            self.pushgateway,
            self.webhook,
            self.supervisor,
            self.nginx_exporter,
            self.process_exporter,
            self.alertmanager,
            self.shadow_relay,
            self.catalogue_server_base,
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

    latency_p95_ms: PositiveMs = Field(description="95th percentile request latency objective (ms)")
    latency_p99_ms: PositiveMs = Field(description="99th percentile request latency objective (ms)")
    error_rate: Fraction = Field(description="Share of requests answered 5xx")
    availability_target: Fraction = Field(description="Error budget = 1 - target over 30 days")
    burn_rate_windows: list[tuple[str, str, float]] = Field(
        description="(long window, short window, burn-rate factor) pairs for multi-window alerts; the first pages",
    )


class Promotion(Strict):
    """What a candidate must show before it may serve traffic (the `gate` command)."""

    baseline: Literal["tfidf_logreg", "majority_class"] = Field(
        description="Reference model trained on the same split that a candidate must beat"
    )
    min_accuracy_margin_over_baseline: float = Field(
        ge=-1, le=1, description="How far the candidate's `metric` must exceed the baseline's"
    )
    max_p95_latency_ms: PositiveMs = Field(
        description="Single-request p95 latency (ONNX Runtime in-process, after warm-up) must be below this (ms)"
    )
    latency_requests: int = Field(ge=20, description="Single requests timed for p50/p95")
    latency_warmup_requests: int = Field(ge=0, description="Requests sent before timing starts (not measured)")
    regression_tolerance_overall: Fraction = Field(
        description="How much lower than the champion's `metric` the candidate's may be"
    )
    regression_tolerance_per_class: Fraction = Field(
        description="How much lower than the champion's recall of any one class the candidate's may be"
    )
    metric: Literal["accuracy", "macro_f1"] = Field(description="Metric compared with the baseline and the champion")


class CanaryAnalysis(Strict):
    """How the canary is judged against stable; the same numbers render into Argo Rollouts."""

    window_seconds: int = Field(ge=10, description="Production analysis window")
    local_window_seconds: int = Field(ge=10, description="Local demo window: shorter, same logic")
    interval_seconds: int = Field(ge=5, description="Production: seconds between two measurements")
    local_interval_seconds: int = Field(ge=2, description="Local: seconds between two measurements")
    max_latency_ratio: float = Field(gt=1.0, description="Roll back if canary p95 > ratio * stable p95")
    max_error_rate: Fraction = Field(description="Roll back if the canary's share of 5xx answers is above this")
    min_requests: int = Field(ge=1, description="Fewer canary requests in a window = inconclusive")
    on_inconclusive: Literal["extend", "abort"] = Field(
        description="An inconclusive window is extended (up to `max_extensions`) or aborted; it never promotes"
    )
    max_extensions: int = Field(ge=0, description="How many times an inconclusive window may be extended")
    failure_limit: int = Field(ge=1, description="Failed measurements before rollback")


class CanaryQuality(Strict):
    """How a candidate's answers are judged against stable's on the same requests (pipelines/shadow/compare.py).
    Too few pairs is inconclusive, never a pass."""

    min_pairs: int = Field(ge=1, description="Fewer paired answers = inconclusive")
    min_agreement: Fraction = Field(description="Roll back if the share of texts labelled as stable did is below this")
    max_flip_rate: Fraction = Field(
        description="Roll back if, of the texts stable gave one label, a larger share got another from the candidate"
    )
    min_pairs_per_label: int = Field(ge=1, description="A label's flip rate is judged on at least this many pairs")
    max_label_psi: float = Field(gt=0, description="Roll back if the predicted-label distribution's PSI is above this")
    max_confidence_drop: Fraction = Field(description="Roll back if the mean confidence falls by more than this")


class CanaryShadow(Strict):
    """The shadow phase before the first canary step: the gateway mirrors a share of live requests to the candidate
    (clients get stable's answer only), then the paired answers are judged by `canary.quality`."""

    enabled: bool = Field(description="Run the shadow phase before the first traffic step")
    share_percent: int = Field(ge=1, le=100, description="Percent of the split's requests mirrored to the candidate")
    duration_seconds: int = Field(ge=1, description="Production: how long requests are mirrored before judging")
    local_duration_seconds: int = Field(ge=1, description="Local: how long requests are mirrored before judging")
    request_timeout_seconds: float = Field(
        gt=0, description="A mirrored request the candidate has not answered by then is dropped (never retried)"
    )
    queue_size: int = Field(
        ge=1, description="Local relay: mirrored requests waiting for the candidate; beyond it they are dropped"
    )
    concurrency: int = Field(ge=1, description="Local relay: mirrored requests in flight to the candidate at once")
    judge_retrained: bool = Field(
        description="Judge a retrained version's answers against stable's too. A retraining exists to change answers "
        "(on the drifted inputs, and it moves the boundary elsewhere): off, its measures are recorded, not judged"
    )


class Canary(Strict):
    """Progressive delivery: the traffic steps of a release and the analysis after each. Steps strictly increase
    and end at 100 (full promotion)."""

    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        description="Percent of traffic on the canary at each step; an analysis follows every step below 100"
    )
    analysis: CanaryAnalysis = Field(description="How each step's canary is judged")
    quality: CanaryQuality = Field(description="How the candidate's answers are judged against stable's")
    shadow: CanaryShadow = Field(description="The shadow phase: mirrored requests, judged on answers only")
    drain_grace_seconds: int = Field(
        ge=0, description="Production: seconds a replaced server keeps answering in-flight requests"
    )
    local_drain_grace_seconds: int = Field(
        ge=0, description="Local: seconds a replaced server keeps answering in-flight requests"
    )

    @model_validator(mode="after")
    def _steps_rise_to_full(self) -> Canary:
        if self.steps != sorted(self.steps) or len(set(self.steps)) != len(self.steps):
            raise ValueError("canary.steps must strictly increase")
        if self.steps[-1] != 100:
            raise ValueError("canary.steps must end at 100 (full promotion)")
        return self


class ApiKey(Strict):
    """A gateway client. The key itself is a secret: only its SHA-256 lives outside the secret store."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")] = Field(
        description="Client name (the key is generated into the secret store under it)"
    )
    rate_per_second: float = Field(gt=0, description="Sustained requests per second allowed")
    burst: int = Field(ge=0, description="Requests allowed above the rate before 429")
    internal: bool = Field(
        description="May pin a version with the pin header (operators, smoke tests, benchmarks); other keys' pin "
        "headers are ignored and their requests follow the release's weights"
    )


class GatewayTls(Strict):
    """TLS at the edge: the local gateway's certificates (a CA generated on first use) and the cluster listener's."""

    min_version: Literal["1.2", "1.3"] = Field(description="Lowest TLS version a client may negotiate")
    ca_validity_days: int = Field(ge=365, description="Validity of the local CA certificate")
    server_cert_validity_days: int = Field(ge=2, le=397, description="Validity of the local server certificate")
    renew_before_days: int = Field(
        ge=1, description="Re-issue a server certificate with fewer days left (cluster: cert-manager renewBefore)"
    )

    @model_validator(mode="after")
    def _renew_inside_validity(self) -> GatewayTls:
        if self.renew_before_days >= self.server_cert_validity_days:
            raise ValueError(
                "gateway.tls.renew_before_days must be below server_cert_validity_days, or every start re-issues"
            )
        return self


class Gateway(Strict):
    """The inference gateway in front of the model servers. API key names are unique."""

    api_keys: list[ApiKey] = Field(description="Clients allowed to call the gateway, each with its rate limit")
    max_request_bytes: int = Field(ge=1024, description="Larger request bodies are refused (413)")
    retry_on_stable: bool = Field(
        description="A canary request that fails to connect is retried once on the stable version"
    )
    upstream_timeout_seconds: float = Field(gt=0, description="How long the gateway waits for a model server")
    client_timeout_seconds: int = Field(
        ge=1,
        le=60,
        description="How long the gateway waits for a client's request headers or body before it drops the "
        "connection: a client that stalls never holds one open (nginx client_header/body_timeout; Envoy "
        "requestReceivedTimeout)",
    )
    load_balancer_scheme: Literal["internet-facing", "internal"] = Field(
        description="Cluster: the gateway's load balancer faces the internet, or only the VPC"
    )
    tls: GatewayTls = Field(description="TLS at the edge (HTTPS listener, certificates, lowest version)")

    @model_validator(mode="after")
    def _unique_names(self) -> Gateway:
        names = [k.name for k in self.api_keys]
        if len(names) != len(set(names)):
            raise ValueError("gateway.api_keys: names must be unique")
        if not any(k.internal for k in self.api_keys):
            raise ValueError("gateway.api_keys: mark one key `internal: true` (operators and smoke tests pin with it)")
        return self

    def internal_key(self) -> str:
        """The first key that may pin a version: what the platform's own tools pin with."""
        return next(k.name for k in self.api_keys if k.internal)


class Serving(Strict):
    """The model server: request limits, runtime threads, adaptive batching, inference log, pod resources."""

    max_batch_size: int = Field(ge=1, le=1024, description="Texts per request")
    max_text_chars: int = Field(ge=1, description="Characters per text")
    max_seq_tokens: int = Field(ge=8, le=512, description="Tokens the model reads per text (longer texts truncate)")
    ort_intra_op_threads: int = Field(ge=1, description="ONNX Runtime threads within one operator")
    ort_inter_op_threads: int = Field(ge=1, description="ONNX Runtime threads across operators")
    batching_max_batch_size: int = Field(ge=1, description="Adaptive batching: most texts merged into one model call")
    batching_max_latency_ms: int = Field(ge=10, description="Too small returns 503 under bursts")
    workers: int = Field(ge=1, description="Server worker processes per model server")
    inference_log_sample_rate: Fraction = Field(description="Share of inferences written to the inference log")
    inference_log_queue_size: int = Field(
        ge=1, description="Records buffered for the inference log; beyond it records are dropped (and counted)"
    )
    inference_log_flush_records: int = Field(ge=1, description="Inference log: write a file once this many records")
    inference_log_flush_seconds: float = Field(gt=0, description="Inference log: write a file at least this often")
    cpu_request: str = Field(description="Kubernetes CPU request of a model server pod")
    cpu_limit: str = Field(description="Kubernetes CPU limit of a model server pod")
    memory_request: str = Field(description="Kubernetes memory request of a model server pod")
    memory_limit: str = Field(description="Kubernetes memory limit of a model server pod")
    gpu_memory_request: str = Field(description="GPU pods: only nodes with at least this much GPU memory")
    gpu_memory_limit: str = Field(description="GPU pods: GPU memory the runtime may allocate")


class Scaling(Strict):
    """Autoscaling in the cluster (KEDA). min_replicas <= max_replicas; a cold request waits longer than the
    slow-cold-start alert."""

    min_replicas: int = Field(ge=0, description="Replicas a critical model keeps at all times")
    max_replicas: int = Field(ge=1, description="Most replicas autoscaling may run")
    target_in_flight_per_replica: int = Field(ge=1, description="Concurrent requests per replica autoscaling aims at")
    scale_to_zero_idle_seconds: int = Field(ge=30, description="A non-critical model idle this long scales to zero")
    scale_from_zero_alert_seconds: int = Field(ge=1, description="Alert when a cold start is slower")
    cold_start_timeout_seconds: int = Field(
        ge=30, description="How long a request to a scaled-to-zero model may wait for a pod"
    )

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


class Generation(Strict):
    """Text generation (catalogue models of task `generate`, on llama.cpp): request limits, the gate, the SLOs.
    Greedy decoding everywhere, so the gate and the canary compare answers that do not depend on a seed."""

    max_prompt_chars: int = Field(ge=1, description="Characters per prompt (longer: 400)")
    max_new_tokens: int = Field(ge=1, le=4096, description="Most tokens one request may ask for (more: 400)")
    default_new_tokens: int = Field(ge=1, description="Tokens generated when a request names no `max_tokens`")
    context_tokens: int = Field(ge=64, le=131072, description="llama.cpp context: prompt and answer together")
    threads: int = Field(ge=1, description="llama.cpp threads per server (one request decodes at a time)")
    gate_min_choice_accuracy: Fraction = Field(
        description="Gate: least share of the held-out questions whose right answer the model scores most likely "
        "(log-likelihood over the choices; chance is 1/choices)"
    )
    gate_max_ttft_p95_ms: float = Field(gt=0, description="Gate: slowest p95 time to first token over its prompts")
    gate_min_tokens_per_second: float = Field(gt=0, description="Gate: least median decode speed (tokens/s)")
    gate_new_tokens: int = Field(ge=1, description="Gate: tokens generated per timed prompt")
    ttft_p95_ms: float = Field(gt=0, description="SLO: p95 time to first token of served requests")
    inter_token_p95_ms: float = Field(gt=0, description="SLO: p95 time between two generated tokens")

    @model_validator(mode="after")
    def _bounds(self) -> Generation:
        if self.default_new_tokens > self.max_new_tokens:
            raise ValueError("generation.default_new_tokens must not exceed generation.max_new_tokens")
        if self.max_new_tokens >= self.context_tokens:
            raise ValueError("generation.max_new_tokens must leave room for the prompt in generation.context_tokens")
        return self


class Rag(Strict):
    """Retrieval-augmented generation (catalogue models of task `rag`, docs/rag.md): the corpus and how it is cut,
    the models a version pins, the request budget and the gate. A version pins its index, the embedder's and the
    generator's versions and its prompt; these settings decide how the next version is built and judged."""

    embedder_model: str = Field(description="The catalogue `embed` model that embeds the corpus and the questions")
    generator_model: str = Field(description="The catalogue `generate` model that writes the answer")
    corpus: list[str] = Field(min_length=1, description="Repository folders whose Markdown files are the corpus")
    chunk_max_chars: int = Field(ge=200, description="A section longer than this is cut at paragraphs into chunks")
    top_k: int = Field(ge=1, le=20, description="Chunks retrieved per question (and cited)")
    prompt_context_chars: int = Field(
        ge=200, description="Retrieved text placed in the prompt, in rank order (the generator's context is small)"
    )
    max_question_chars: int = Field(ge=1, description="Characters per question (longer: 400)")
    answer_new_tokens: int = Field(ge=1, description="Tokens the generator may write per answer")
    embed_timeout_seconds: float = Field(gt=0, description="The embedder's budget per question (over it: 503)")
    generate_timeout_seconds: float = Field(
        gt=0, description="The generator's budget per answer; over it (or down): the retrieval-only answer"
    )
    server_threads: int = Field(
        ge=1,
        le=256,
        description="Questions one RAG server works on at once (BentoML threads): each mostly waits on the embedder "
        "and the generator, so more than the cores",
    )
    max_generations_in_flight: int = Field(
        ge=1,
        description="Generations one RAG server has in flight at once (the generator decodes one request at a time); "
        "a question that waits longer than generate_timeout_seconds for a slot gets the retrieval-only answer",
    )
    grounded_min_token_share: Fraction = Field(
        description="An answer is grounded when at least this share of its content words occurs in the chunks it "
        "cites (pipelines/rag/evaluate.py)"
    )
    alert_max_degraded_ratio: Fraction = Field(
        description="Alert: share of questions in 10 minutes answered without generation (generator down, slow or "
        "another version) or not at all (embedder down) above this"
    )
    alert_min_questions: int = Field(ge=1, description="Alert: fewer questions in those 10 minutes: no verdict")
    gate_min_recall_at_k: Fraction = Field(
        description="Gate: least share of the labelled questions whose answering file is among the top_k chunks"
    )
    gate_min_mrr: Fraction = Field(description="Gate: least mean reciprocal rank of the first chunk of that file")
    gate_min_groundedness: Fraction = Field(description="Gate: least share of generated answers that are grounded")
    gate_generated_questions: int = Field(
        ge=1, description="Gate: the first this many labelled questions are also answered in full (groundedness)"
    )
    gate_max_retrieval_p95_ms: float = Field(gt=0, description="Gate: slowest p95 of embed + retrieve per question")
    gate_max_answer_p95_ms: float = Field(gt=0, description="Gate: slowest p95 of a whole answer, generation included")

    @model_validator(mode="after")
    def _budget(self) -> Rag:
        if self.gate_max_answer_p95_ms < self.gate_max_retrieval_p95_ms:
            raise ValueError("rag.gate_max_answer_p95_ms must be at least rag.gate_max_retrieval_p95_ms")
        return self


class Drift(Strict):
    """Data drift checks over the inference log."""

    threshold: Fraction = Field(description="Share of drifted features that raises the alert")
    min_samples: int = Field(ge=10, description="Fewer logged texts in the window: no verdict")
    max_samples: int = Field(
        ge=10, description="Logged texts scored per check (uniform sample): bounds cost and test power"
    )
    stattest_threshold: Fraction = Field(description="p-value below which one feature counts as drifted")
    schedule_cron: str = Field(description="When the cluster's drift job runs (cron)")
    window_hours: int = Field(ge=1, description="Hours of inference log one check reads")


class Alerting(Strict):
    """Alert thresholds beyond the SLOs (core/rules.py renders them for both runtimes)."""

    local_scrape_interval_seconds: int = Field(ge=1, description="Local Prometheus: short canary windows")
    model_server_down_for_seconds: int = Field(ge=0, description="A model server down this long pages")
    inference_log_drop_window_seconds: int = Field(
        ge=30, description="Dropped inference log records within this window alert"
    )
    cold_start_lookback_seconds: int = Field(ge=60, description="Slow pod starts alert this long")
    gpu_memory_used_ratio: Fraction = Field(description="GPU framebuffer share that alerts")
    gpu_underutilised_percent: float = Field(ge=0, le=100, description="Paying for an idle GPU")
    gpu_underutilised_window_seconds: int = Field(
        ge=300, description="GPU utilisation is averaged over this window for the idle-GPU alert"
    )


class AlertRouting(Strict):
    """How Alertmanager groups and repeats notifications, in both runtimes (core/alertmanager.py renders the
    routes: `page` and `ticket` to their own receivers, grouped by model version)."""

    group_wait_seconds: int = Field(ge=0, description="Wait this long for more alerts of a new group before notifying")
    group_interval_seconds: int = Field(ge=1, description="Wait this long before notifying a group's new alerts")
    page_repeat_interval_seconds: int = Field(ge=60, description="A still-firing page is sent again this often")
    ticket_repeat_interval_seconds: int = Field(ge=60, description="A still-firing ticket is sent again this often")
    resolve_timeout_seconds: int = Field(
        ge=1, description="An alert not re-sent by Prometheus for this long is resolved (API-posted alerts)"
    )


class InstancePrice(Strict):
    """One EC2 instance type's on-demand price and size."""

    usd_per_hour: float = Field(gt=0, description="On-demand price (USD per hour)")
    vcpu: int = Field(ge=1, description="vCPUs")
    memory_gib: float = Field(gt=0, description="Memory (GiB)")
    gpu: str | None = Field(description="GPUs it carries (null: none)")
    source: str = Field(description="Where the price comes from")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Date the price was read (YYYY-MM-DD)")


class GpuThroughput(Strict):
    """Published (not locally measured) GPU throughput of the served encoder: an estimate until measured on a GPU."""

    inferences_per_second: float = Field(gt=0, description="Texts per second one GPU serves at the latency SLO")
    basis: str = Field(description="How the figure follows from the published one")
    source: str = Field(description="Where the published figure comes from")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Date of the published figure (YYYY-MM-DD)")


class Prices(Strict):
    """On-demand prices (us-east-1, Linux). Update with source and date; the cost report cites them.
    `cpu_instance` and `gpu_instance` must name entries of `instances`."""

    region: str = Field(description="AWS region the prices are for")
    instances: dict[str, InstancePrice] = Field(description="EC2 instance types by name")
    cpu_instance: str = Field(description="Instance type a CPU model server runs on (costed per replica)")
    gpu_instance: str = Field(description="Instance type a GPU model server runs on")
    monthly_hours: float = Field(gt=0, description="Hours in a month, for monthly costs")
    other: dict[str, float] = Field(description="Named unit prices in USD (see keys)")
    other_source: str = Field(description="Where the `other` prices come from")
    gpu_throughput: dict[str, GpuThroughput] = Field(
        description="Per GPU instance type: estimated inferences/s (the cost report cites it)"
    )

    @model_validator(mode="after")
    def _known_instances(self) -> Prices:
        for role, name in (("cpu_instance", self.cpu_instance), ("gpu_instance", self.gpu_instance)):
            if name not in self.instances:
                raise ValueError(f"prices.{role}: {name!r} has no entry in prices.instances")
        return self


class Retraining(Strict):
    """Circuit breakers of `mlp model retrain`: when a retraining is refused (each refusal exits non-zero)."""

    cooldown_seconds: int = Field(ge=0, description="Refuse a retraining this soon after the last retrained version")
    max_per_day: int = Field(ge=1, description="Refuse once this many versions were retrained in the last 24 hours")
    min_labelled_examples: int = Field(
        ge=1, description="Refuse when the shifted domain's training split holds fewer labelled examples"
    )
    min_shifted_heldout_gain: float = Field(
        ge=0,
        le=1,
        description="The gate of a retrained candidate: its shifted-domain held-out accuracy must beat the "
        "champion's by at least this much (else retraining did not do its job)",
    )


class Release(Strict):
    """The registry aliases a release reads and sets, and the model commands address when none is named."""

    default_model: str = Field(
        description="The catalogue model that commands address without `--model`, and that the compatibility "
        "route `/classify` serves (a `classify` model)"
    )
    champion_alias: str = Field(description="Alias of the version serving all traffic")
    challenger_alias: str = Field(description="Alias of a registered, gated version not yet released")
    candidate_alias: str = Field(description="Setting this alias on a version starts its release (webhook)")
    webhook_max_skew_seconds: int = Field(
        ge=1, description="Registry webhook deliveries older (or newer) than this are refused (replay guard)"
    )


Task = Literal["classify", "embed", "generate", "rag"]
# composite: a version pins other catalogue models' versions and an index (task `rag`)
Runtime = Literal["onnxruntime", "llama-cpp", "composite"]
Criticality = Literal["critical", "non-critical"]
# Sections a model may override; the model's values are merged field by field over the platform's (`for_model`).
OVERRIDABLE = ("slo", "promotion", "canary", "serving", "scaling", "drift", "generation", "rag", "prices")
OverridableSection = Literal["slo", "promotion", "canary", "serving", "scaling", "drift", "generation", "rag", "prices"]
# A model name names Kubernetes objects (`<name>-v<version>`), registry entries, metric labels and routes.
MODEL_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"


class CatalogueModel(Strict):
    """One served model. Adding a model is an entry here and a packaging recipe; routes, rules, dashboards,
    cost and the cluster manifests follow from it (docs/catalogue.md)."""

    name: str = Field(pattern=MODEL_NAME_PATTERN, description="Registered model name (MLflow), metric label, route")
    task: Task = Field(description="What it answers: the route `/v1/models/<name>/<task>` and the request schema")
    runtime: Runtime = Field(
        description="The runtime a version gets unless its artifacts say otherwise (`model.onnx`: ONNX Runtime, "
        "`model.gguf`: llama.cpp)"
    )
    criticality: Criticality = Field(
        description="critical: never below `scaling.min_replicas`; non-critical: scales to zero when idle "
        "(a cold request waits up to `scaling.cold_start_timeout_seconds`)"
    )
    description: str = Field(min_length=1, description="One line for people: what the model is for")
    overrides: dict[OverridableSection, dict[str, Any]] = Field(
        description="Where this model differs from the platform-wide sections: `{slo: {latency_p95_ms: 2000}}`"
    )

    @property
    def critical(self) -> bool:
        return self.criticality == "critical"


class Policy(Strict):
    """The platform policy (policy.yaml): every threshold, limit and price, written once."""

    ports: Ports = Field(description="Loopback ports of the local runtime")
    slo: Slo = Field(description="Service level objectives")
    promotion: Promotion = Field(description="The promotion gate")
    canary: Canary = Field(description="Canary releases")
    gateway: Gateway = Field(description="The inference gateway")
    serving: Serving = Field(description="The model server")
    scaling: Scaling = Field(description="Autoscaling")
    drift: Drift = Field(description="Drift checks")
    generation: Generation = Field(description="Text generation: limits, gate and SLOs of `generate` models")
    rag: Rag = Field(description="Retrieval-augmented generation: corpus, budget and gate of `rag` models")
    alerting: Alerting = Field(description="Alert thresholds beyond the SLOs")
    alert_routing: AlertRouting = Field(description="Alert delivery: Alertmanager grouping and repeat intervals")
    prices: Prices = Field(description="Prices the cost model uses")
    release: Release = Field(description="The registry aliases and the default model")
    retraining: Retraining = Field(description="Retraining's circuit breakers")
    models: list[CatalogueModel] = Field(min_length=1, description="The model catalogue: every served model")

    @model_validator(mode="after")
    def _catalogue(self) -> Policy:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: each name once, got {names}")
        default = next((m for m in self.models if m.name == self.release.default_model), None)
        if default is None:
            raise ValueError(f"release.default_model {self.release.default_model!r} is not in models: {names}")
        if default.task != "classify":
            raise ValueError(f"release.default_model {default.name!r}: the `/classify` route needs a classify model")
        for m in self.models:
            self.for_model(m.name)  # each model's merged sections validate, or this names the field
        served = len(self.own_server_models())
        taken = set(self.ports.model_dump().values()) - {self.ports.catalogue_server_base}
        top = self.ports.catalogue_server_base + CATALOGUE_SERVER_SLOTS * served - 1
        if served and any(self.ports.catalogue_server_base < port <= top for port in taken):
            raise ValueError(f"ports.catalogue_server_base: the {served} catalogue servers' ports clash with another")
        for m in self.models:
            if m.task == "rag":
                self._check_rag(m.name)
        return self

    def model(self, name: str) -> CatalogueModel:
        """The catalogue entry `name`; a ValueError naming the catalogue if there is none."""
        for m in self.models:
            if m.name == name:
                return m
        raise ValueError(
            f"model {name!r} is not in the catalogue (policy.yaml models): {[m.name for m in self.models]}"
        )

    def catalogue_server_port(self, name: str, slot: int = 0) -> int:
        """The local port of a model served by its own servers (task `generate`, `embed`, `rag`): base + its place
        among those models in the catalogue; slot 1 (a second version beside it during a release) n ports further."""
        served = self.own_server_models()
        if name not in served:
            raise ValueError(f"{name!r} is not a catalogue model with its own server: {served}")
        if not 0 <= slot < CATALOGUE_SERVER_SLOTS:
            raise ValueError(f"slot {slot}: a catalogue model has slots 0 to {CATALOGUE_SERVER_SLOTS - 1}")
        return self.ports.catalogue_server_base + slot * len(served) + served.index(name)

    def _check_rag(self, name: str) -> None:
        if self.for_model(name).canary.shadow.enabled:
            raise ValueError(
                f"models[{name}]: a rag model has no shadow phase (its answers have no label to pair and compare): "
                "set overrides.canary.shadow.enabled to false"
            )
        r = self.for_model(name).rag
        for role, model, task in (
            ("embedder_model", r.embedder_model, "embed"),
            ("generator_model", r.generator_model, "generate"),
        ):
            entry = next((m for m in self.models if m.name == model), None)
            if entry is None or entry.task != task:
                raise ValueError(f"models[{name}]: rag.{role} {model!r} must be a `{task}` model of the catalogue")
        if (
            r.prompt_context_chars + r.max_question_chars
            >= self.for_model(r.generator_model).generation.max_prompt_chars
        ):
            raise ValueError(
                f"models[{name}]: rag.prompt_context_chars + rag.max_question_chars must fit the generator's "
                "generation.max_prompt_chars, with room for the template"
            )

    def own_server_models(self) -> list[str]:
        """The catalogue models the local runtime serves one version each of, on its own port (not `classify`)."""
        return [m.name for m in self.models if m.task != "classify"]

    def for_model(self, name: str) -> Policy:
        """This policy as model `name` sees it: its overrides merged over the platform-wide sections."""
        overrides = self.model(name).overrides
        if not overrides:
            return self
        merged: dict[str, Any] = {}
        for section, values in overrides.items():
            current = getattr(self, section)
            try:  # each section validates as a whole: its own cross-field rules hold for the merged values too
                merged[section] = type(current).model_validate(_merge(current.model_dump(), values))
            except ValidationError as exc:
                fields = "; ".join(f"{section}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"models[{name}].overrides: {fields}") from exc
        return self.model_copy(update=merged)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merge(base[key], value) if nested else value
    return out


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
