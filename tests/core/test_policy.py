"""The policy config: the shipped file is valid, bad values are refused naming the field, the schema is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.policy import REPO_ROOT, Policy, PolicyError, json_schema, load_policy


def _write(tmp_path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def shipped() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())


def test_shipped_policy_is_valid() -> None:
    p = load_policy(REPO_ROOT / "policy.yaml")
    assert p.canary.steps[-1] == 100
    assert p.prices.cpu_instance in p.prices.instances


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("slo", "error_rate"), 1.5, "slo.error_rate"),
        (("canary", "steps"), [50, 10, 100], "canary"),
        (("canary", "steps"), [10, 50], "canary"),
        (("canary", "analysis", "max_latency_ratio"), 0.9, "canary.analysis.max_latency_ratio"),
        (("ports", "mlflow"), 80, "ports.mlflow"),
        (("prices", "cpu_instance"), "z9.huge", "prices"),
        (("serving", "max_batch_size"), 0, "serving.max_batch_size"),
        (("scaling", "min_replicas"), 50, "scaling"),
        (("canary", "analysis", "on_inconclusive"), "pass", "canary.analysis.on_inconclusive"),
        (("generation", "default_new_tokens"), 100000, "generation"),  # above max_new_tokens
        (("generation", "max_new_tokens"), 4096, "generation"),  # leaves no room for a prompt in the context
    ],
)
def test_invalid_value_is_rejected_naming_the_field(
    tmp_path: Path,
    shipped: dict,
    path: tuple[str, ...],
    value: object,
    field: str,  # type: ignore[type-arg]
) -> None:
    node = shipped
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(PolicyError) as err:
        load_policy(_write(tmp_path, shipped))
    assert field in str(err.value)


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path, shipped: dict) -> None:  # type: ignore[type-arg]
    shipped["canary"]["analysis"]["max_latncy_ratio"] = 1.2
    with pytest.raises(PolicyError, match="max_latncy_ratio"):
        load_policy(_write(tmp_path, shipped))


def test_port_collision_is_rejected(tmp_path: Path, shipped: dict) -> None:  # type: ignore[type-arg]
    shipped["ports"]["gateway"] = shipped["ports"]["mlflow"]
    with pytest.raises(PolicyError, match="own port"):
        load_policy(_write(tmp_path, shipped))


def test_port_offset_moves_every_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLP_PORT_OFFSET", raising=False)
    base = load_policy(REPO_ROOT / "policy.yaml")
    monkeypatch.setenv("MLP_PORT_OFFSET", "7")
    shifted = load_policy(REPO_ROOT / "policy.yaml")
    assert shifted.ports.mlflow == base.ports.mlflow + 7
    assert shifted.ports.model_server_base == base.ports.model_server_base + 7
    assert shifted.ports.model_server_slots == base.ports.model_server_slots


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "absent.yaml")


def test_exported_schema_is_current() -> None:
    committed = json.loads((REPO_ROOT / "policy.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "run `mlp policy schema --write`"


def test_a_gateway_without_an_internal_key_is_refused() -> None:
    from pydantic import ValidationError

    from core.policy import Gateway, policy

    data = policy().gateway.model_dump()
    data["api_keys"] = [{**k, "internal": False} for k in data["api_keys"]]
    with pytest.raises(ValidationError, match="internal: true"):
        Gateway.model_validate(data)
    assert policy().gateway.internal_key() in {k.name for k in policy().gateway.api_keys if k.internal}


def _generator(shipped: dict) -> dict:  # type: ignore[type-arg]
    return next(m for m in shipped["models"] if m["task"] == "generate")


def test_each_model_with_its_own_server_gets_its_own_local_port(shipped: dict) -> None:  # type: ignore[type-arg]
    shipped["models"].append({**_generator(shipped), "name": "second-generator"})
    p = Policy.model_validate(shipped)
    served = [m.name for m in p.models if m.task in ("generate", "embed", "rag")]
    assert served == p.own_server_models() and "second-generator" in served
    ports = [p.catalogue_server_port(n) for n in served]
    assert ports == [p.ports.catalogue_server_base + i for i in range(len(served))]
    beside = [p.catalogue_server_port(n, slot=1) for n in served]  # a release's candidate: after every first slot
    assert beside == [p.ports.catalogue_server_base + len(served) + i for i in range(len(served))]
    with pytest.raises(ValueError, match="slots 0 to 1"):
        p.catalogue_server_port(served[0], slot=2)
    with pytest.raises(ValueError, match="not a catalogue model with its own server"):
        p.catalogue_server_port(p.release.default_model)


@pytest.mark.parametrize("slot", [0, 1])
def test_catalogue_server_ports_may_not_run_into_another_port(shipped: dict, slot: int) -> None:  # type: ignore[type-arg]
    served = sum(m["task"] in ("generate", "embed", "rag") for m in shipped["models"])
    shipped["ports"]["alertmanager"] = shipped["ports"]["catalogue_server_base"] + slot * served + 1
    with pytest.raises(ValueError, match="catalogue_server_base"):
        Policy.model_validate(shipped)


@pytest.mark.parametrize(
    ("field", "value", "needs"),
    [("embedder_model", "gemma3-270m", "`embed` model"), ("generator_model", "minilm-embedder", "`generate` model")],
)
def test_a_rag_model_must_pin_models_of_the_right_task(shipped: dict, field: str, value: str, needs: str) -> None:  # type: ignore[type-arg]
    shipped["rag"][field] = value
    with pytest.raises(ValueError, match=f"rag.{field} '{value}' must be a {needs}"):
        Policy.model_validate(shipped)


def test_a_rag_prompt_must_fit_the_generators_prompt_limit(shipped: dict) -> None:  # type: ignore[type-arg]
    shipped["rag"]["prompt_context_chars"] = shipped["generation"]["max_prompt_chars"]
    with pytest.raises(ValueError, match=r"must fit the generator's generation\.max_prompt_chars"):
        Policy.model_validate(shipped)


def test_a_rag_model_may_not_have_a_shadow_phase(shipped: dict) -> None:  # type: ignore[type-arg]
    rag = next(m for m in shipped["models"] if m["task"] == "rag")
    rag["overrides"]["canary"]["shadow"]["enabled"] = True
    with pytest.raises(ValueError, match=r"a rag model has no shadow phase"):
        Policy.model_validate(shipped)
