"""One release, end to end with fakes: the version is resolved once and fetched once, and every step after the
fetch (the gate first) works on that same directory. Also the real adapters' wiring of that directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import env as env_vars
from core.policy import Policy, policy
from pipelines.release import service
from pipelines.release.deps import MlflowRegistry, PromotionGate
from pipelines.release.state import Phase, Trigger
from pipelines.release.store import StateStore
from tests.pipelines.release.fakes import CANARY, GOOD, MODEL, STABLE, FakeGate, FakeRegistry, fake_deps, release_state


@pytest.fixture()
def p(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    monkeypatch.setenv(env_vars.BUILD_DIR.name, str(tmp_path / "build"))  # the release log goes there
    return policy()


def test_one_release_resolves_and_downloads_the_candidate_once(p: Policy, tmp_path: Path) -> None:
    deps = fake_deps([GOOD])
    registry, gate = deps.registry, deps.gate
    assert isinstance(registry, FakeRegistry) and isinstance(gate, FakeGate)
    registry.aliases["challenger"] = CANARY
    final, _ = service.start(
        model_name=MODEL,
        version="challenger",  # an alias, as the webhook or an operator may give it
        trigger=Trigger("webhook", "receiver"),
        deps=deps,
        p=p,
        store=StateStore(MODEL, tmp_path / "releases"),
        say=lambda _m: None,
    )
    assert final.phase is Phase.SUCCEEDED and final.version == CANARY
    assert registry.resolved == ["challenger"]  # resolved once, before anything else
    assert registry.pulled == [CANARY]  # downloaded once for the whole release
    assert gate.runs == [CANARY]
    assert gate.model_dirs == [Path(f"/models/v{CANARY}")]  # the gate measured the pulled directory
    assert registry.aliases["champion"] == CANARY


def test_an_unknown_version_is_refused_before_anything_runs(p: Policy, tmp_path: Path) -> None:
    deps = fake_deps([GOOD])
    store = StateStore(MODEL, tmp_path / "releases")
    with pytest.raises(LookupError, match="no version or alias 'nope'"):
        service.start(
            model_name=MODEL, version="nope", trigger=Trigger("manual", "x"), deps=deps, p=p, store=store,
            say=lambda _m: None,
        )  # fmt: skip
    assert store.load() is None
    assert isinstance(deps.registry, FakeRegistry) and deps.registry.pulled == []


# ---------------------------------------------------------------- the real adapters hand the directory along


def test_mlflow_registry_pull_returns_the_downloaded_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.registry import client

    calls: list[tuple[Any, ...]] = []

    def download(version: int, name: str, *, cache_root: Path) -> Path:
        calls.append((version, name))
        return cache_root / name / str(version) / "model"

    monkeypatch.setattr(client, "download_version", download)
    model_dir = MlflowRegistry(MODEL).pull(CANARY)
    assert calls == [(CANARY, MODEL)]
    assert model_dir.parts[-3:] == (MODEL, str(CANARY), "model")


def test_promotion_gate_measures_the_given_directory_without_fetching(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import gate
    from services.registry import client

    seen: list[tuple[int, Path, str | None]] = []

    def gate_version(version: int, model_dir: Path, champion_alias: str | None = None) -> Any:
        seen.append((version, model_dir, champion_alias))
        return gate.GateReport(MODEL, version, STABLE, True, [], report_path="/tmp/gate.json")

    def no_download(*_a: object, **_k: object) -> Path:
        raise AssertionError("the gate must not fetch the candidate again")

    monkeypatch.setattr(gate, "gate_version", gate_version)
    monkeypatch.setattr(client, "download_version", no_download)
    outcome = PromotionGate("champion").run(CANARY, Path("/models/v7"))
    assert outcome.passed and outcome.report_path == "/tmp/gate.json"
    assert seen == [(CANARY, Path("/models/v7"), "champion")]


def test_model_gate_resolves_and_downloads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import gate

    calls: list[str] = []
    monkeypatch.setattr(gate.registry, "check_mlflow", lambda: None)
    monkeypatch.setattr(gate.registry, "resolve_version", lambda ref: calls.append(f"resolve {ref}") or CANARY)
    monkeypatch.setattr(
        gate.registry,
        "download_version",
        lambda v, *, cache_root: calls.append(f"download {v}") or Path(f"/models/v{v}"),
    )
    monkeypatch.setattr(gate, "gate_version", lambda v, d, alias, log: calls.append(f"gate {v} {d}") or "report")
    assert gate.run_gate("challenger") == "report"
    assert calls == ["resolve challenger", f"download {CANARY}", f"gate {CANARY} /models/v{CANARY}"]


# ---------------------------------------------------------------- status and decisions recorded elsewhere


def test_status_says_interrupted_only_without_a_running_owner(tmp_path: Path) -> None:
    store = StateStore(MODEL, tmp_path / "releases")
    assert service.status(MODEL, store).state is None
    state = release_state(phase=Phase.ROUTED)
    store.save(state)
    now = service.status(MODEL, store)
    assert now.state is not None and now.state.release_id == state.release_id
    assert not now.running and now.interrupted


def test_record_decision_tags_the_version_and_moves_the_alias_when_asked() -> None:
    registry = FakeRegistry()
    service.record_decision(
        registry=registry, version=CANARY, outcome="promoted", reason="argo analysis passed", champion_alias="champion"
    )
    assert registry.tags[CANARY] == {"release.status": "promoted", "release.reason": "argo analysis passed"}
    assert registry.aliases["champion"] == CANARY
    with pytest.raises(service.ReleaseRefused, match="one of"):
        service.record_decision(
            registry=registry, version=CANARY, outcome="in_progress", reason="", champion_alias=None
        )
