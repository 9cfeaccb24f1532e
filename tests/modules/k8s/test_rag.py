"""The catalogue's `embed` and `rag` models in the cluster: the RAG server's pods call the embedder and the generator
the policy names through the KEDA interceptor (with the Host each one's InterceptorRoute matches) and Qdrant with
its key from a Secret, and the network lets them do exactly that; the embedder is shaped like the generate model.

Peers are the pods as their charts label them (test_network.py), and the NetworkPolicies evaluated are the serving
render's and the add-on namespaces' (modules/k8s/platform.py) together: a call needs both ends.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from core import contracts
from core.policy import Policy, policy
from modules.k8s import platform, render_all
from modules.k8s.render import to_yaml
from modules.k8s.validate import validate_all
from tests.modules.k8s.conftest import by_kind, named, props
from tests.modules.k8s.netpol_eval import Pod, allowed
from tests.modules.k8s.test_network import COREDNS, ENVOY, IMDS, INTERCEPTOR, MLFLOW, PROMETHEUS, PUSHGATEWAY, S3

NS = "model-serving"
# The qdrant chart's selector labels (charts/qdrant/templates/_helpers.tpl `qdrant.selectorLabels`, release `qdrant`).
QDRANT = Pod("qdrant", {"app": "qdrant", "app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "qdrant"})
HOSTNAME = "models.example.com"  # GatewayProps' default, which props() keeps


def rag_model(pol: Policy) -> str:
    (name,) = [m.name for m in pol.models if m.task == "rag"]
    return name


def embed_model(pol: Policy) -> str:
    (name,) = [m.name for m in pol.models if m.task == "embed"]
    return name


def with_criticality(base: Policy, name: str, criticality: str) -> Policy:
    """The policy with one catalogue model's criticality changed, validated as policy.yaml would be."""
    raw = base.model_dump()
    (entry,) = [m for m in raw["models"] if m["name"] == name]
    entry["criticality"] = criticality
    return Policy.model_validate(raw)


def render(pol: Policy, model: str, mode: str = "deployments", weights: dict[int, int] | None = None) -> Any:
    return render_all(props(mode, model=model, weights=weights or {1: 100}), pol)


def server(rendered: dict[str, list[dict[str, Any]]], kind: str = "Deployment") -> dict[str, Any]:
    (workload,) = by_kind(rendered, kind)
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def pod(rendered: dict[str, list[dict[str, Any]]], kind: str = "Deployment") -> Pod:
    (workload,) = by_kind(rendered, kind)
    return Pod(workload["metadata"]["namespace"], workload["spec"]["template"]["metadata"]["labels"])


@pytest.fixture(scope="module")
def pol() -> Policy:
    return policy()


@pytest.fixture(scope="module")
def rag(pol: Policy) -> dict[str, list[dict[str, Any]]]:
    return render(pol, rag_model(pol))


@pytest.fixture(scope="module")
def embedder(pol: Policy) -> dict[str, list[dict[str, Any]]]:
    return render(pol, embed_model(pol))


@pytest.fixture(scope="module")
def generator(pol: Policy) -> dict[str, list[dict[str, Any]]]:
    return render(pol, pol.for_model(rag_model(pol)).rag.generator_model)


@pytest.fixture(scope="module")
def network(rag: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The serving namespace's policies of the RAG render with every add-on namespace's."""
    owned = platform.owned_namespaces(
        vpc_cidr="10.10.0.0/16", serving_namespace=NS, gateway_name="mlp-gateway", listener_ports=[80], model_port=3000
    )
    add_ons = [m for ns in owned for m in platform.namespace_manifests(ns) if m["kind"] == "NetworkPolicy"]
    return by_kind(rag, "NetworkPolicy") + add_ons


def side(policies: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Only `namespace`'s policies: asks what its pods admit, whatever the sender's own egress says."""
    return [p for p in policies if p["metadata"]["namespace"] == namespace]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_the_rag_server_calls_the_policys_models_by_the_host_their_interceptor_routes_match(
    pol: Policy, rag: Any, embedder: Any, generator: Any
) -> None:
    env = env_of(server(rag))
    r = pol.for_model(rag_model(pol)).rag
    for role, target_render, target in (
        ("EMBEDDER", embedder, r.embedder_model),
        ("GENERATOR", generator, r.generator_model),
    ):
        (route,) = by_kind(target_render, "InterceptorRoute")
        assert route["metadata"]["name"] == target  # the model the policy's rag section names, not a literal here
        (rule,) = route["spec"]["rules"]
        assert env[f"MLP_{role}_HOST"]["value"] in rule["hosts"]
        # The URL is the interceptor's proxy Service, the one the gateway's route to a non-critical model names.
        (backend,) = [
            b
            for h in by_kind(target_render, "HTTPRoute")
            if h["metadata"]["name"] == target
            for b in h["spec"]["rules"][0]["backendRefs"]
        ]
        assert (
            env[f"MLP_{role}_URL"]["value"] == f"http://{backend['name']}.{backend['namespace']}.svc:{backend['port']}"
        )
    assert env["MLP_EMBEDDER_HOST"]["value"] != env["MLP_GENERATOR_HOST"]["value"]


def test_the_qdrant_key_comes_from_a_secret_and_never_as_a_value(rag: Any) -> None:
    env = env_of(server(rag))
    assert env["MLP_QDRANT_URL"]["value"] == "http://qdrant.qdrant.svc:6333"
    key = env["MLP_QDRANT_API_KEY"]
    assert "value" not in key
    assert key["valueFrom"] == {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    # The rest of a model server's environment is there too (its version, the registry credential by reference).
    assert env["MLP_MODEL_NAME"]["value"] and env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert env["MLP_INFERENCE_LOG_BUCKET"]["value"]  # it logs its questions, answers and citations
    assert "MLP_DEVICE" not in env  # a classifier's setting
    assert server(rag)["command"] == ["bentoml", "serve", contracts.RAG_SERVICE_REF]
    text = to_yaml(rag["serving"])
    assert "&id" not in text and "*id" not in text  # no YAML anchors: each pod has its own objects


def test_the_rag_server_reaches_the_interceptor_and_qdrant_and_nothing_new_besides(
    rag: Any, embedder: Any, generator: Any, network: list[dict[str, Any]]
) -> None:
    rag_pod = pod(rag)
    assert allowed(network, rag_pod, INTERCEPTOR, 8080)
    assert allowed(network, rag_pod, QDRANT, 6333)
    assert not allowed(network, rag_pod, QDRANT, 6334)  # gRPC
    assert not allowed(network, rag_pod, QDRANT, 6335)  # p2p
    # Not around the interceptor: the embedder's and the generator's pods admit the interceptor only.
    assert not allowed(network, rag_pod, pod(embedder), 3000)
    assert not allowed(network, rag_pod, pod(generator), 3000)
    # What every model server may do, and no more.
    assert allowed(network, rag_pod, MLFLOW, 5000) and allowed(network, rag_pod, S3, 443)
    assert allowed(network, rag_pod, COREDNS, 53, "UDP")
    assert not allowed(network, rag_pod, PUSHGATEWAY, 9091)
    assert not allowed(network, rag_pod, IMDS, 80)
    assert not allowed(network, rag_pod, PROMETHEUS, 9090)
    # It is itself called like any non-critical model: by the interceptor and Prometheus.
    assert allowed(network, INTERCEPTOR, rag_pod, 3000) and not allowed(network, ENVOY, rag_pod, 3000)


def test_qdrant_admits_the_rag_servers_and_the_ingest_job_only(
    rag: Any, embedder: Any, network: list[dict[str, Any]]
) -> None:
    ingest = Pod(NS, {"mlp.io/rag": "ingest", "app.kubernetes.io/name": "oncall-rag-ingest"})
    assert allowed(network, pod(rag), QDRANT, 6333)
    assert allowed(network, ingest, QDRANT, 6333)
    assert allowed(network, ingest, MLFLOW, 5000)
    assert not allowed(network, ingest, INTERCEPTOR, 8080)
    assert not allowed(network, ENVOY, ingest, 3000)  # nothing calls the job
    # Another model server (the embedder), the classifier's pods, the interceptor, Prometheus, a stranger: refused.
    classifier = Pod(
        NS,
        {
            "app.kubernetes.io/name": "review-polarity-classifier",
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": "ml-platform",
        },
    )
    for stranger in (
        pod(embedder),
        classifier,
        INTERCEPTOR,
        PROMETHEUS,
        ENVOY,
        Pod(NS, {"app": "x"}),
        Pod("qdrant", {"app": "x"}),
    ):
        assert not allowed(network, stranger, QDRANT, 6333), stranger
    # Qdrant's own ingress decides alone (the senders' egress left open): the same answers.
    qdrant_side = side(network, "qdrant")
    assert allowed(qdrant_side, pod(rag), QDRANT, 6333) and allowed(qdrant_side, ingest, QDRANT, 6333)
    assert not allowed(qdrant_side, pod(rag), QDRANT, 6334)
    elsewhere = Pod("team-x", {"mlp.io/rag": "server"})  # the label counts in the serving namespace only
    for stranger in (pod(embedder), classifier, INTERCEPTOR, PROMETHEUS, ENVOY, elsewhere, Pod(NS, {"app": "x"})):
        assert not allowed(qdrant_side, stranger, QDRANT, 6333), stranger
    # Qdrant itself sends only HTTPS (S3 snapshots, STS): not to the serving pods, not to the node's credentials.
    assert allowed(network, QDRANT, S3, 443)
    assert not allowed(network, QDRANT, pod(rag), 3000)
    assert not allowed(network, QDRANT, IMDS, 80)


def test_only_the_rag_servers_reach_the_interceptor_from_the_serving_namespace(
    embedder: Any, network: list[dict[str, Any]]
) -> None:
    # The embedder's own pods send to MLflow and HTTPS only...
    embedder_policies = by_kind(embedder, "NetworkPolicy")
    assert not allowed(embedder_policies + network, pod(embedder), INTERCEPTOR, 8080)
    # ...and the interceptor's namespace admits, from the serving namespace, the RAG servers only.
    keda_side = side(network, "keda")
    assert not allowed(keda_side, pod(embedder), INTERCEPTOR, 8080)
    assert not allowed(keda_side, Pod(NS, {"mlp.io/rag": "ingest"}), INTERCEPTOR, 8080)
    assert allowed(keda_side, Pod(NS, {"mlp.io/rag": "server"}), INTERCEPTOR, 8080)
    assert allowed(keda_side, ENVOY, INTERCEPTOR, 8080)


def test_a_critical_model_the_rag_server_calls_is_refused_by_name(pol: Policy) -> None:
    target = pol.for_model(rag_model(pol)).rag.embedder_model
    critical = with_criticality(pol, target, "critical")
    with pytest.raises(ValueError, match=f"calls {target}, which is critical"):
        render(critical, rag_model(pol))


def test_a_critical_rag_model_in_rollout_mode_gets_the_same_calls(pol: Policy) -> None:
    name = rag_model(pol)
    critical = with_criticality(pol, name, "critical")
    rendered = render(critical, name, mode="rollout", weights={1: 90, 2: 10})
    env = env_of(server(rendered, "Rollout"))
    assert {"MLP_EMBEDDER_URL", "MLP_GENERATOR_HOST", "MLP_QDRANT_URL", "MLP_QDRANT_API_KEY"} <= set(env)
    assert pod(rendered, "Rollout").labels["mlp.io/rag"] == "server"
    assert validate_all(rendered) == []


def test_a_critical_rag_models_canary_is_analysed_on_its_own_route_without_a_shadow_step(pol: Policy) -> None:
    name = rag_model(pol)
    rendered = render(with_criticality(pol, name, "critical"), name, mode="rollout", weights={1: 90, 2: 10})
    (template,) = by_kind(rendered, "AnalysisTemplate")
    queries = [m["provider"]["prometheus"]["query"] for m in template["spec"]["metrics"]]
    counted = [q for q in queries if "bentoml_service_request" in q]
    assert counted and all(f'endpoint="{contracts.server_route("rag")}"' in q for q in counted), counted
    (rollout,) = by_kind(rendered, "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == list(pol.canary.steps)
    assert "shadow" not in yaml.safe_dump(steps)  # the policy gives a rag model no shadow phase


def test_the_embedder_is_shaped_like_the_generate_model(pol: Policy, embedder: Any) -> None:
    name = embed_model(pol)
    container = server(embedder)
    assert container["command"] == ["bentoml", "serve", contracts.EMBED_SERVICE_REF]
    assert container["image"].rsplit(":", 1)[0].endswith("/model-server")  # the classifier's CPU image
    env = env_of(container)
    assert "MLP_INFERENCE_LOG_BUCKET" not in env and "MLP_QDRANT_API_KEY" not in env
    assert not by_kind(embedder, "CronJob")  # no drift: drift watches a classifier's inputs
    assert named(by_kind(embedder, "ScaledObject"), name)["spec"]["minReplicaCount"] == 0  # non-critical
    route = named(by_kind(embedder, "HTTPRoute"), name)
    assert [m["path"]["value"] for r in route["spec"]["rules"] for m in r["matches"]] == [
        contracts.model_route(name, "embed")
    ]
    assert "mlp.io/rag" not in pod(embedder).labels


@pytest.mark.parametrize("task", ["embed", "rag"])
def test_neither_has_a_gpu_variant(pol: Policy, task: str) -> None:
    (name,) = [m.name for m in pol.models if m.task == task]
    with pytest.raises(ValueError, match=f"{name} is a {task} model: .*render it without --gpu"):
        render_all(props(gpu=True, model=name, weights={1: 100}), pol)


def test_both_renders_are_schema_valid(rag: Any, embedder: Any) -> None:
    assert validate_all(rag) == [] and validate_all(embedder) == []
    for rendered in (rag, embedder):
        written = to_yaml([m for ms in rendered.values() for m in ms])
        assert list(yaml.safe_load_all(written)) == [m for ms in rendered.values() for m in ms]
