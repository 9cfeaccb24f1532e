"""The cost arithmetic, with the prices and requests in policy.yaml."""

from __future__ import annotations

import pytest

from core import cost as m
from core.policy import policy
from core.units import cpu_cores, memory_gib
from pipelines.cost import report as rep
from pipelines.cost.measure import BatchTiming, CpuThroughput, choose, time_batches


def cpu_instance():  # type: ignore[no-untyped-def]
    p = policy()
    return p.prices.instances[p.prices.cpu_instance]


def test_quantities() -> None:
    assert cpu_cores("500m") == 0.5
    assert cpu_cores("2") == 2.0
    assert memory_gib("768Mi") == 0.75
    assert memory_gib("2Gi") == 2.0
    with pytest.raises(ValueError, match="CPU quantity"):
        cpu_cores("half")
    with pytest.raises(ValueError, match="memory quantity"):
        memory_gib("12 parsecs")


def test_cost_per_1k_round_trips_to_the_hourly_price() -> None:
    price = cpu_instance().usd_per_hour
    for rate in (1.0, 37.5, 1200.0):
        per_1k = m.cost_per_1k(price, rate)
        assert per_1k * rate * 3600 / 1000 == pytest.approx(price)
    assert m.cost_per_1k(price, 200) == pytest.approx(m.cost_per_1k(price, 100) / 2)
    with pytest.raises(ValueError, match="positive"):
        m.cost_per_1k(price, 0)


def test_replica_share_is_the_binding_resource() -> None:
    inst = cpu_instance()
    cpu_bound = m.replica_share(inst, f"{inst.vcpu * 250}m", "1Mi")
    assert cpu_bound == pytest.approx(0.25)
    mem_bound = m.replica_share(inst, "1m", f"{inst.memory_gib / 2:g}Gi")
    assert mem_bound == pytest.approx(0.5)
    p = policy()
    expected = inst.usd_per_hour * max(
        cpu_cores(p.serving.cpu_request) / inst.vcpu, memory_gib(p.serving.memory_request) / inst.memory_gib
    )
    assert m.replica_usd_per_hour(p) == pytest.approx(expected)
    assert 0 < m.replica_usd_per_hour(p) < inst.usd_per_hour


def test_throughput_scales_with_the_vcpu_ratio() -> None:
    inst = cpu_instance()
    assert m.instance_throughput(100, 1, inst) == pytest.approx(100 * inst.vcpu)
    assert m.instance_throughput(100, 2, inst) == pytest.approx(50 * inst.vcpu)
    with pytest.raises(ValueError):
        m.instance_throughput(100, 0, inst)


def test_break_even_is_where_cpu_spend_reaches_one_gpu() -> None:
    p = policy()
    inst = cpu_instance()
    gpu = p.prices.instances[p.prices.gpu_instance]
    cpu = m.Option("cpu", inst.usd_per_hour, 500)
    fast_gpu = m.Option("gpu", gpu.usd_per_hour, 500 * gpu.usd_per_hour / inst.usd_per_hour * 4)
    rate = m.break_even_rate(cpu, fast_gpu)
    assert rate is not None
    assert rate / cpu.inferences_per_second * cpu.usd_per_hour == pytest.approx(fast_gpu.usd_per_hour)
    slow_gpu = m.Option("gpu", gpu.usd_per_hour, 500)  # same throughput, higher price: never cheaper
    assert m.break_even_rate(cpu, slow_gpu) is None


def test_instances_needed_rounds_up_and_keeps_one() -> None:
    opt = m.Option("x", 1.0, 100)
    assert m.instances_needed(opt, 0) == 1
    assert m.instances_needed(opt, 100) == 1
    assert m.instances_needed(opt, 100.5) == 2
    assert m.monthly_cost(opt, 250, 730) == pytest.approx(3 * 730)


def test_scale_to_zero_saving() -> None:
    p = policy()
    replica = m.replica_usd_per_hour(p)
    hours = p.prices.monthly_hours
    idle = m.scale_to_zero(replica, p.scaling.min_replicas, 0, 0, p.scaling.scale_to_zero_idle_seconds, 30, hours)
    assert idle.scale_to_zero_usd_per_month == 0
    assert idle.saving_usd_per_month == pytest.approx(replica * p.scaling.min_replicas * hours)
    busy = m.scale_to_zero(replica, 1, 24, 10, 300, 30, hours)
    assert busy.scale_to_zero_usd_per_month == pytest.approx(replica * hours)  # capped at a full day
    some = m.scale_to_zero(replica, 2, 2, 12, 300, 30, hours)
    per_day = 2 + 12 * (300 + 30) / 3600
    assert some.scale_to_zero_usd_per_month == pytest.approx(replica * per_day * hours / 24)
    assert some.saving_usd_per_month == pytest.approx(some.always_on_usd_per_month - some.scale_to_zero_usd_per_month)
    with pytest.raises(ValueError):
        m.scale_to_zero(replica, 1, 25, 0, 300, 30, hours)


def test_choose_takes_the_fastest_batch_within_the_slo() -> None:
    slo = policy().slo.latency_p95_ms
    timings = [
        BatchTiming(1, 1, slo / 10, 100, 100),
        BatchTiming(8, 1, slo / 3, 300, 300),
        BatchTiming(32, 1, slo * 0.9, 500, 500),  # fits alone, not once queueing doubles it
    ]
    assert choose(timings, slo).batch_size == 8
    # Priced by CPU time, not wall time: a batch that only looked fast on an idle wall clock loses.
    contended = [BatchTiming(2, 1, slo / 10, 400, 150), BatchTiming(4, 1, slo / 10, 200, 250)]
    assert choose(contended, slo).batch_size == 4
    with pytest.raises(ValueError, match="no batch size meets"):
        choose([BatchTiming(1, 1, slo, 10, 10)], slo)


def test_time_batches_counts_texts() -> None:
    calls: list[int] = []
    timings = time_batches(lambda batch: calls.append(len(batch)), ["a", "b", "c"], (1, 4), seconds_per_size=0.01)
    assert [t.batch_size for t in timings] == [1, 4]
    assert all(t.texts_per_second > 0 and t.texts_per_cpu_second > 0 and t.p95_ms >= t.p50_ms for t in timings)
    assert set(calls) == {1, 4}


def test_report_prices_cpu_and_every_gpu_estimate_with_its_source() -> None:
    p = policy()
    inst = cpu_instance()
    cpu = CpuThroughput(250.0, 1.0, 1, 6.0, "test", "int8", "test cpu", [BatchTiming(1, 4.0, 6.0, 250.0, 250.0)])
    r = rep.build(p, cpu, cold_start_seconds=2.0, inputs=rep.ScenarioInputs())
    assert r["cpu"]["usd_per_1k"] == pytest.approx(m.cost_per_1k(inst.usd_per_hour, 250.0 * inst.vcpu))
    assert {g["instance"] for g in r["gpu"]} == set(p.prices.gpu_throughput)
    for g in r["gpu"]:
        est = p.prices.gpu_throughput[g["instance"]]
        assert g["status"] == rep.GPU_LABEL and g["source"] == est.source
        assert g["usd_per_1k"] == pytest.approx(m.cost_per_1k(g["usd_per_hour"], est.inferences_per_second))
        # The throughput needed to match CPU gives exactly CPU's cost per inference.
        assert m.cost_per_1k(g["usd_per_hour"], g["needed_inferences_per_second_to_match_cpu"]) == pytest.approx(
            r["cpu"]["usd_per_1k"]
        )
    assert r["monitoring"]["usd_per_month"] == pytest.approx(sum(i["usd_per_month"] for i in r["monitoring"]["items"]))
    text = rep.markdown(r)
    assert f"{r['cpu']['usd_per_1k']:.6f}" in text and rep.GPU_LABEL in text


def test_generation_is_priced_per_request_and_per_million_generated_tokens() -> None:
    # $3.60/h is $0.001/s; a request of 11 tokens: 0.2 s to the first token, then 10 more at 20 tokens/s = 0.7 s.
    c = m.generation_costs(3.6, ttft_seconds=0.2, tokens_per_second=20, tokens=11)
    assert c.usd_per_1k_requests == pytest.approx(0.7)  # 0.7 s x $0.001/s x 1,000
    assert c.usd_per_million_tokens == pytest.approx(0.7 * 0.001 / 11 * 1e6)
    # Longer answers spread the first token's wait over more tokens: cheaper per token, dearer per request.
    longer = m.generation_costs(3.6, ttft_seconds=0.2, tokens_per_second=20, tokens=101)
    assert longer.usd_per_million_tokens < c.usd_per_million_tokens
    assert longer.usd_per_1k_requests > c.usd_per_1k_requests


@pytest.mark.parametrize(("ttft", "tps", "tokens"), [(0.1, 0, 10), (0.1, 10, 0), (-1, 10, 10)])
def test_generation_cost_refuses_impossible_measurements(ttft: float, tps: float, tokens: int) -> None:
    with pytest.raises(ValueError, match="decode speed"):
        m.generation_costs(1.0, ttft_seconds=ttft, tokens_per_second=tps, tokens=tokens)
