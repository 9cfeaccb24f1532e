"""The catalogue servers' slots, weights and routes as recorded (no processes started): where a release's candidate
goes, how the model's route is split, and what stopping a version refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.policy import policy
from infra.local import generators as g

RAG = next(m.name for m in policy().models if m.task == "rag")
EMBEDDER = next(m.name for m in policy().models if m.task == "embed")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path


def server(model: str, version: int, slot: int, weight: int) -> g.GenerateServer:
    port = policy().catalogue_server_port(model, slot)
    return g.GenerateServer(model, version, "", port, policy().model(model).task, (), slot, weight)


def test_a_candidate_goes_beside_the_serving_version_with_no_traffic() -> None:
    serving = [server(RAG, 3, 0, 100)]
    assert g._place(RAG, 4, serving, beside=True) == (1, 0)
    assert g._place(RAG, 4, [], beside=True) == (0, 100)  # nothing serves yet: it takes the route
    assert g._place(RAG, 3, serving, beside=True) == (0, 100)  # already live: left where and as it is


def test_a_replacement_takes_the_serving_versions_slot_and_all_the_traffic() -> None:
    after_promotion = [server(RAG, 4, 1, 100)]  # a promoted candidate serves from slot 1
    assert g._place(RAG, 5, after_promotion, beside=False) == (1, 100)
    assert g._place(EMBEDDER, 2, [server(EMBEDDER, 1, 0, 100)], beside=False) == (0, 100)  # its port never moves


def test_a_third_version_is_refused_naming_the_release_to_finish() -> None:
    both = [server(RAG, 3, 0, 90), server(RAG, 4, 1, 10)]
    with pytest.raises(g.GeneratorError, match=r"already runs two versions \(v3, v4\).*mlp release abort"):
        g._place(RAG, 5, both, beside=True)


def test_the_route_is_split_by_weight_and_every_server_is_scraped(state: Path) -> None:
    g._record([server(EMBEDDER, 1, 0, 100), server(RAG, 3, 0, 100), server(RAG, 4, 1, 0)])
    route = f"/v1/models/{RAG}/rag"
    assert g.routes()[route] == ((policy().catalogue_server_port(RAG), 100),)  # the candidate has no traffic yet
    g.set_weights(RAG, {3: 90, 4: 10})
    assert g.weights(RAG) == {3: 90, 4: 10} and g.weights(EMBEDDER) == {1: 100}
    assert g.serving_version(RAG) == 3 and g.serving_version("absent-model") is None
    assert g.routes()[route] == (
        (policy().catalogue_server_port(RAG), 90),
        (policy().catalogue_server_port(RAG, 1), 10),
    )
    targets = json.loads(g.targets_path().read_text())
    assert sorted((t["labels"]["model_name"], t["labels"]["model_version"]) for t in targets) == sorted(
        [(EMBEDDER, "1"), (RAG, "3"), (RAG, "4")]
    )


@pytest.mark.parametrize(
    ("weights", "message"),
    [({3: 90, 4: 20}, "summing to 100"), ({3: 100, 5: 0}, "no live server for v5"), ({3: 110, 4: -10}, "percents")],
)
def test_a_bad_split_is_refused_and_the_recorded_one_kept(state: Path, weights: dict[int, int], message: str) -> None:
    g._record([server(RAG, 3, 0, 100), server(RAG, 4, 1, 0)])
    with pytest.raises(g.GeneratorError, match=message):
        g.set_weights(RAG, weights)
    assert g.weights(RAG) == {3: 100}


def test_a_version_with_traffic_is_not_unrouted_while_another_is_live(state: Path) -> None:
    g._record([server(RAG, 3, 0, 90), server(RAG, 4, 1, 10)])
    with pytest.raises(g.GeneratorError, match="still has 10% of the traffic; move it to v3 first"):
        g.unrecord(RAG, 4)
    g.set_weights(RAG, {3: 100})
    g.unrecord(RAG, 4)
    assert [(s.version, s.slot) for s in g.live_of(RAG)] == [(3, 0)]


def test_each_slot_is_its_own_program_with_its_own_bentoml_home(state: Path) -> None:
    first, second = g.program(server(RAG, 3, 0, 100)), g.program(server(RAG, 4, 1, 0))
    assert (first.name, second.name) == (f"rag-{RAG}", f"rag-{RAG}-slot1")
    assert first.env["BENTOML_HOME"] != second.env["BENTOML_HOME"]  # Prometheus multiprocess files kept apart
    assert second.command[second.command.index("--port") + 1] == str(policy().catalogue_server_port(RAG, 1))
