"""Adding a model is a policy entry: a third model written into a test's policy file appears in the gateway routes,
the rules, the dashboards, the cluster manifests and the cost report, with its own overrides, and no code changes.
Everything below reads the policy through `MLP_POLICY` (the CLI) or `load_policy(path)`, as a fork would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import contracts
from core.policy import REPO_ROOT, load_policy
from pipelines.cost import report
from pipelines.cost.measure import CpuThroughput

THIRD = "ticket-router"
THIRD_P95_MS = 350
THIRD_DRIFT = 0.3


def write_policy(tmp_path: Path, **third: Any) -> Path:
    raw = yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())
    raw["models"].append(
        {
            "name": THIRD,
            "task": "classify",
            "runtime": "onnxruntime",
            "criticality": "critical",
            "description": "Routes support tickets to a queue",
            "overrides": {
                "slo": {"latency_p95_ms": THIRD_P95_MS},
                "drift": {"threshold": THIRD_DRIFT},
                "serving": {"cpu_request": "1", "memory_request": "1536Mi"},
            },
            **third,
        }
    )
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def mlp(policy_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLP_POLICY": str(policy_file), "COLUMNS": "400"}  # errors unwrapped
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policy(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def manifests(policy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("k8s")
    result = mlp(policy_file, "render", "k8s", "--model", THIRD, "--versions", "1=90,2=10", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "(schema-valid)" in result.stdout
    return [m for path in sorted(out.glob("*.yaml")) for m in yaml.safe_load_all(path.read_text()) if m]


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def test_the_policy_with_a_third_model_validates(policy_file: Path) -> None:
    result = mlp(policy_file, "policy", "validate")
    assert result.returncode == 0, result.stderr
    assert f"{THIRD} (classify, critical)" in result.stdout


def test_the_catalogue_lists_it_with_what_its_overrides_give_it(policy_file: Path) -> None:
    result = mlp(policy_file, "policy", "models")
    assert result.returncode == 0, result.stderr
    third = result.stdout.split(f"{THIRD}:", 1)[1]
    assert f"POST {contracts.model_route(THIRD, 'classify')}" in third
    assert f"p95 {THIRD_P95_MS} ms" in third and f"alert above {THIRD_DRIFT:g}" in third
    assert "slo.latency_p95_ms, drift.threshold, serving.cpu_request, serving.memory_request" in third
    default = result.stdout.split(f"{THIRD}:", 1)[0]
    assert "also POST /classify" in default and "overrides    none" in default


def test_its_manifests_route_serve_and_scale_it(manifests: list[dict[str, Any]]) -> None:
    route = named(manifests, "HTTPRoute", THIRD)
    (rule,) = route["spec"]["rules"]
    # Its own catalogue route only: `/classify` stays the default model's.
    assert [m["path"]["value"] for m in rule["matches"]] == [contracts.model_route(THIRD, "classify")]
    assert {b["name"]: b["weight"] for b in rule["backendRefs"]} == {f"{THIRD}-v1": 90, f"{THIRD}-v2": 10}
    for version in (1, 2):
        deploy = named(manifests, "Deployment", f"{THIRD}-v{version}")
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"] == {"cpu": "1", "memory": "1536Mi"}  # its override
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MLP_MODEL_NAME"] == THIRD
        assert named(manifests, "ScaledObject", f"{THIRD}-v{version}")["spec"]["minReplicaCount"] >= 1
    named(manifests, "CronJob", f"{THIRD}-drift")


def test_its_rules_carry_its_own_objectives(manifests: list[dict[str, Any]], policy_file: Path, tmp_path: Path) -> None:
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    groups = {g["name"]: g for g in rule["spec"]["groups"]}
    slo = groups[f"mlp-slo-{THIRD}"]
    slow = [r for r in slo["rules"] if r.get("record", "").startswith("model_version:slo_slow_requests")]
    assert slow and all(f'model_name="{THIRD}"' in r["expr"] for r in slow)
    assert all(f'le="{THIRD_P95_MS / 1000:g}"' in r["expr"] for r in slow)
    drift = [r for r in groups["mlp-alerts"]["rules"] if r.get("alert") == contracts.ALERT_DRIFT]
    assert any(f'model_name="{THIRD}"' in r["expr"] and r["expr"].endswith(f"> {THIRD_DRIFT:g}") for r in drift)
    # The same groups for the local Prometheus, and promtool accepts them.
    result = mlp(policy_file, "obs", "render-rules", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    local = yaml.safe_load(next(tmp_path.glob("*.yml")).read_text())
    assert f"mlp-slo-{THIRD}" in [g["name"] for g in local["groups"]]
    check = subprocess.run(["promtool", "check", "rules", *map(str, tmp_path.glob("*.yml"))], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_its_dashboards_offer_it(manifests: list[dict[str, Any]], policy_file: Path, tmp_path: Path) -> None:
    def model_choices(board: dict[str, Any]) -> list[str]:
        (var,) = [v for v in board["templating"]["list"] if v["name"] == "model_name"]
        return str(var["query"]).split(",")

    boards = [json.loads(v) for m in manifests if m["kind"] == "ConfigMap" for v in m.get("data", {}).values()]
    assert boards and all(THIRD in model_choices(b) for b in boards if "templating" in b)
    result = mlp(policy_file, "obs", "render-dashboards", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for path in tmp_path.glob("*.json"):
        assert THIRD in model_choices(json.loads(path.read_text()))


def test_its_cost_follows_its_own_pod_size(policy_file: Path) -> None:
    p = load_policy(policy_file)
    cpu = CpuThroughput(100.0, 2, 8, 50.0, "test", "int8", "test cpu", [])
    r = report.build(p, cpu, 10.0, report.ScenarioInputs())
    rows = {row["model"]: row for row in r["catalogue"]}
    default = rows[p.release.default_model]
    third = rows[THIRD]
    # Twice the CPU request (1 against 500m) and twice the memory: twice the replica price, then its floor.
    assert third["replica_usd_per_hour"] == pytest.approx(2 * default["replica_usd_per_hour"])
    assert third["usd_per_month_before_traffic"] == pytest.approx(2 * default["usd_per_month_before_traffic"])
    assert THIRD in report.markdown(r)


def test_a_bad_override_is_refused_naming_the_model_and_field(tmp_path: Path) -> None:
    path = write_policy(tmp_path, overrides={"slo": {"latency_p95_ms": -5}})
    result = mlp(path, "policy", "validate")
    assert result.returncode == 2
    assert f"models[{THIRD}].overrides: slo.latency_p95_ms" in result.stdout + result.stderr


def test_a_model_not_in_the_catalogue_is_a_usage_error(policy_file: Path, tmp_path: Path) -> None:
    result = mlp(policy_file, "render", "k8s", "--model", "nope", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "not in the catalogue" in result.stderr and THIRD in result.stderr


def generator_of(policy_file: Path) -> str:
    (generator,) = [m["name"] for m in yaml.safe_load(policy_file.read_text())["models"] if m["task"] == "generate"]
    return str(generator)


def test_a_generate_model_renders_on_the_cpu_image_scaled_to_zero(policy_file: Path, tmp_path: Path) -> None:
    generator = generator_of(policy_file)
    result = mlp(policy_file, "render", "k8s", "--model", generator, "--versions", "4=100", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "(schema-valid)" in result.stdout
    rendered = [m for path in sorted(tmp_path.glob("*.yaml")) for m in yaml.safe_load_all(path.read_text()) if m]
    container = named(rendered, "Deployment", f"{generator}-v4")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["bentoml", "serve", contracts.GENERATE_SERVICE_REF]
    assert container["image"].rsplit(":", 1)[0].endswith("/model-server"), "the CPU image: it carries llama.cpp"
    assert container["resources"]["limits"]["cpu"] == "2"  # its serving override: generation.threads cores
    env = {e["name"] for e in container["env"]}
    assert "MLP_INFERENCE_LOG_BUCKET" not in env  # a generator writes no inference log
    assert named(rendered, "ScaledObject", generator)["spec"]["minReplicaCount"] == 0  # non-critical
    assert not [m for m in rendered if m["kind"] == "CronJob"], "drift watches classifiers only"
    route = named(rendered, "HTTPRoute", generator)
    assert [m["path"]["value"] for r in route["spec"]["rules"] for m in r["matches"]] == [
        contracts.model_route(generator, "generate")
    ]


def test_a_generate_model_is_refused_on_the_gpu_image(policy_file: Path, tmp_path: Path) -> None:
    result = mlp(policy_file, "render", "k8s", "--model", generator_of(policy_file), "--gpu", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "llama.cpp" in result.stderr and "without --gpu" in result.stderr
    assert not list(tmp_path.glob("*.yaml"))  # nothing half-rendered
