"""The cost arithmetic, kept free of I/O so it is unit-tested with policy values.

Conventions: prices in USD per hour, throughput in inferences (texts classified) per second.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.policy import InstancePrice, Policy
from core.units import cpu_cores, memory_gib


def cost_per_1k(usd_per_hour: float, inferences_per_second: float) -> float:
    """USD per 1,000 inferences for capacity that costs `usd_per_hour` and serves `inferences_per_second`."""
    if inferences_per_second <= 0:
        raise ValueError("throughput must be positive to price an inference")
    return usd_per_hour / (inferences_per_second * 3600) * 1000


@dataclass(frozen=True)
class GenerationCost:
    usd_per_1k_requests: float
    usd_per_million_tokens: float
    tokens_per_request: int


def generation_costs(usd_per_hour: float, ttft_seconds: float, tokens_per_second: float, tokens: int) -> GenerationCost:
    """What generated text costs on capacity that costs `usd_per_hour` and decodes one request at a time (as the
    llama.cpp server does): a request of `tokens` tokens takes the time to its first token plus the rest at the
    decode speed. Per million tokens counts generated tokens only (the prompt's evaluation is in TTFT)."""
    if tokens_per_second <= 0 or tokens < 1 or ttft_seconds < 0:
        raise ValueError("pricing generation needs a positive decode speed, tokens >= 1 and ttft >= 0")
    request_seconds = ttft_seconds + (tokens - 1) / tokens_per_second
    per_second = usd_per_hour / 3600
    return GenerationCost(
        usd_per_1k_requests=per_second * request_seconds * 1000,
        usd_per_million_tokens=per_second * request_seconds / tokens * 1_000_000,
        tokens_per_request=tokens,
    )


def replica_share(instance: InstancePrice, cpu_request: str, memory_request: str) -> float:
    """Share of an instance one replica reserves: the scheduler packs by requests, so the binding resource
    (CPU or memory) decides how many replicas fit."""
    return max(cpu_cores(cpu_request) / instance.vcpu, memory_gib(memory_request) / instance.memory_gib)


def replica_usd_per_hour(p: Policy) -> float:
    """What one CPU model-server replica costs in the cluster (its share of the CPU instance type)."""
    instance = p.prices.instances[p.prices.cpu_instance]
    return instance.usd_per_hour * replica_share(instance, p.serving.cpu_request, p.serving.memory_request)


def instance_throughput(measured_per_second: float, measured_vcpus: float, instance: InstancePrice) -> float:
    """Scale a throughput measured on `measured_vcpus` to an instance by the vCPU ratio (one single-threaded
    ONNX Runtime worker per vCPU, which is how the servers are configured: linear in workers)."""
    if measured_vcpus <= 0:
        raise ValueError("measured_vcpus must be positive")
    return measured_per_second * instance.vcpu / measured_vcpus


@dataclass(frozen=True)
class Option:
    """One way to serve: an instance type and how many inferences/s one instance sustains at the SLO."""

    name: str
    usd_per_hour: float
    inferences_per_second: float

    @property
    def usd_per_1k(self) -> float:
        return cost_per_1k(self.usd_per_hour, self.inferences_per_second)


def instances_needed(option: Option, request_rate: float) -> int:
    """Whole instances needed for a sustained rate (at least one: an always-on endpoint)."""
    if request_rate < 0:
        raise ValueError("request rate must not be negative")
    return max(1, -(-int(request_rate * 1000) // int(option.inferences_per_second * 1000)))


def monthly_cost(option: Option, request_rate: float, monthly_hours: float) -> float:
    return instances_needed(option, request_rate) * option.usd_per_hour * monthly_hours


def break_even_rate(cpu: Option, gpu: Option) -> float | None:
    """Sustained rate (inferences/s) above which one GPU instance costs less than the CPU instances serving the
    same rate: where the CPU fleet's hourly spend reaches one GPU instance, (GPU $/h / CPU $/h) x CPU throughput.
    None if the GPU never wins (its cost per inference at full load is not lower, or one GPU cannot carry that
    rate). Whole instances make the real curve a staircase; this is the continuous crossing."""
    if gpu.usd_per_1k >= cpu.usd_per_1k:
        return None
    rate = gpu.usd_per_hour / cpu.usd_per_hour * cpu.inferences_per_second
    return rate if rate <= gpu.inferences_per_second else None


@dataclass(frozen=True)
class ScaleToZero:
    """Saving of scale-to-zero for a non-critical endpoint, and what its cold starts cost."""

    always_on_usd_per_month: float
    scale_to_zero_usd_per_month: float
    saving_usd_per_month: float
    cold_starts_per_day: float
    cold_start_seconds: float


def scale_to_zero(
    replica_usd_per_hour: float,
    min_replicas: int,
    busy_hours_per_day: float,
    bursts_per_day: float,
    idle_seconds: int,
    cold_start_seconds: float,
    monthly_hours: float,
) -> ScaleToZero:
    """Always-on keeps `min_replicas` up all month; scale-to-zero keeps one replica up only while busy, plus the
    idle tail (`idle_seconds` after each burst) and the cold start itself, once per burst."""
    if not 0 <= busy_hours_per_day <= 24:
        raise ValueError("busy_hours_per_day must be within 0..24")
    days = monthly_hours / 24
    always_on = replica_usd_per_hour * min_replicas * monthly_hours
    per_day_hours = min(24.0, busy_hours_per_day + bursts_per_day * (idle_seconds + cold_start_seconds) / 3600)
    scaled = replica_usd_per_hour * per_day_hours * days
    return ScaleToZero(always_on, scaled, always_on - scaled, bursts_per_day, cold_start_seconds)
