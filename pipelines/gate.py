"""The promotion gate: may a candidate version serve traffic?

Criteria (thresholds from policy.promotion):
1. its validation metric beats the baseline (TF-IDF + logistic regression on the same split) by the margin;
2. its single-request p95 latency, measured here in-process with ONNX Runtime after warm-up, is under the limit;
3. no regression against the champion overall (tolerance_overall) ...
4. ... nor for any class (recall, tolerance_per_class).
A retrained candidate (tag `retrain.trigger`) is also judged on the two held-out splits, which neither its training
nor its selection saw: no regression in-domain (tolerance_overall) and a gain on the shifted domain of at least
policy.retraining.min_shifted_heldout_gain over the champion; a retraining that did not help there is not released.
The gate measures everything itself on the shipped validation split, with the same evaluation code the
packaging step used, so a version cannot pass on numbers it brought along.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.policy import Policy, policy
from infra.local.paths import build_dir, model_cache
from services.registry import client as registry


@dataclass(frozen=True)
class Criterion:
    name: str
    passed: bool
    candidate: float | None
    reference: float | None
    threshold: str
    detail: str = ""


@dataclass
class GateReport:
    model_name: str
    candidate_version: int
    champion_version: int | None
    passed: bool
    criteria: list[Criterion]
    retrained: bool = False  # a retrained version: judged on the held-out splits too
    candidate_metrics: dict[str, Any] = field(default_factory=dict)
    champion_metrics: dict[str, Any] | None = None
    baseline_metrics: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    report_path: str | None = None

    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _metric(result: Any, name: str) -> float:
    return float(getattr(result, name))


def judge(
    p: Policy,
    candidate: Any,
    baseline: Any,
    latency_p95_ms: float,
    champion: Any | None,
) -> list[Criterion]:
    """Apply the policy to measured results (EvalResult-like objects with accuracy, macro_f1, per_class)."""
    promo = p.promotion
    metric = promo.metric
    cand, base = _metric(candidate, metric), _metric(baseline, metric)
    criteria = [
        Criterion(
            f"{metric} above baseline ({promo.baseline})",
            cand > base + promo.min_accuracy_margin_over_baseline,
            cand,
            base,
            f"> baseline + {promo.min_accuracy_margin_over_baseline}",
        ),
        Criterion(
            "single-request p95 latency",
            latency_p95_ms < promo.max_p95_latency_ms,
            latency_p95_ms,
            promo.max_p95_latency_ms,
            f"< {promo.max_p95_latency_ms} ms",
        ),
    ]
    if champion is None:
        criteria.append(Criterion("no regression vs champion", True, cand, None, "no champion yet: first release"))
        return criteria
    champ = _metric(champion, metric)
    criteria.append(
        Criterion(
            f"no {metric} regression vs champion",
            cand >= champ - promo.regression_tolerance_overall,
            cand,
            champ,
            f">= champion - {promo.regression_tolerance_overall}",
        )
    )
    for label, stats in sorted(champion.per_class.items()):
        champ_recall = float(stats["recall"])
        cand_recall = float(candidate.per_class.get(label, {}).get("recall", 0.0))
        criteria.append(
            Criterion(
                f"no recall regression on class {label!r}",
                cand_recall >= champ_recall - promo.regression_tolerance_per_class,
                cand_recall,
                champ_recall,
                f">= champion - {promo.regression_tolerance_per_class}",
            )
        )
    return criteria


RETRAIN_TRIGGER_TAG = "retrain.trigger"  # pipelines/retrain/run.py sets it on every retrained version


def retrained_criteria(p: Policy, cand_dir: Path, champ_dir: Path | None) -> list[Criterion]:
    """The held-out criteria of a retrained candidate, measured here on both domains' held-out splits."""
    from pipelines.data import load_shifted_split, load_split, shifted_dataset_sha256
    from pipelines.eval_cache import cached, model_subject
    from pipelines.evaluation import evaluate
    from services.model_runtime.runtimes import load_classifier

    splits = {
        "heldout": (load_split("heldout"), "review_polarity:heldout"),
        "shifted_heldout": (load_shifted_split("heldout"), f"nyt_editorials:heldout:{shifted_dataset_sha256()}"),
    }

    def accuracy(model_dir: Path, split: str) -> float:
        examples, subject = splits[split]
        result = cached(f"{model_subject(model_dir)}:{subject}", lambda: evaluate(load_classifier(model_dir), examples))
        return result.accuracy

    if champ_dir is None:
        return [Criterion("held-out splits vs champion", True, None, None, "no champion yet: first release")]
    tolerance, gain = p.promotion.regression_tolerance_overall, p.retraining.min_shifted_heldout_gain
    cand_in, champ_in = accuracy(cand_dir, "heldout"), accuracy(champ_dir, "heldout")
    cand_shift, champ_shift = accuracy(cand_dir, "shifted_heldout"), accuracy(champ_dir, "shifted_heldout")
    return [
        Criterion(
            "no accuracy regression vs champion on the in-domain held-out split",
            cand_in >= champ_in - tolerance,
            cand_in,
            champ_in,
            f">= champion - {tolerance}",
        ),
        Criterion(
            "shifted-domain held-out accuracy gain over the champion",
            cand_shift >= champ_shift + gain,
            cand_shift,
            champ_shift,
            f">= champion + {gain} (retraining.min_shifted_heldout_gain)",
        ),
    ]


def run_gate(candidate_ref: str | int, champion_alias: str | None = None, log_to_mlflow: bool = True) -> GateReport:
    """`mlp model gate`: resolve and fetch the candidate (a number or an alias), then gate it."""
    registry.check_mlflow()
    version = registry.resolve_version(candidate_ref)
    cand_dir = registry.download_version(version, cache_root=model_cache())
    return gate_version(version, cand_dir, champion_alias, log_to_mlflow)


def gate_version(
    cand_version: int, cand_dir: Path, champion_alias: str | None = None, log_to_mlflow: bool = True
) -> GateReport:
    """Measure the fetched candidate (and champion, and baseline) on the validation split and apply the policy.

    The caller passes the candidate's model directory: a release fetches its version once and hands the same
    directory to every step (gate, canary), instead of each step resolving and downloading it again.
    """
    from pipelines.baseline import train_baseline
    from pipelines.data import load_split
    from pipelines.eval_cache import cached, model_subject
    from pipelines.evaluation import evaluate, measure_latency
    from services.model_runtime.runtimes import load_classifier

    p = policy()
    name = registry.model_name()
    champ_version = registry.get_alias(champion_alias or p.release.champion_alias)
    if champ_version == cand_version:
        champ_version = None  # re-gating the champion: compare with the baseline only

    validation = load_split("validation")
    texts = [ex.text for ex in validation]
    candidate = load_classifier(cand_dir)
    cand_eval = cached(model_subject(cand_dir), lambda: evaluate(candidate, validation))
    latency = measure_latency(
        candidate, texts, n=p.promotion.latency_requests, warmup=p.promotion.latency_warmup_requests
    )
    baseline_kind = p.promotion.baseline
    baseline_eval = cached(
        f"baseline:{baseline_kind}", lambda: evaluate(train_baseline(baseline_kind, load_split("train")), validation)
    )
    champ_eval = None
    champ_dir: Path | None = None
    if champ_version is not None:
        champ_dir = registry.download_version(champ_version, cache_root=model_cache())
        champ_eval = cached(model_subject(champ_dir), lambda: evaluate(load_classifier(champ_dir), validation))

    criteria = judge(p, cand_eval, baseline_eval, float(latency.p95_ms), champ_eval)
    retrained = bool(registry.get_version(cand_version).tags.get(RETRAIN_TRIGGER_TAG))
    if retrained:
        criteria += retrained_criteria(p, cand_dir, champ_dir)
    report = GateReport(
        model_name=name,
        candidate_version=cand_version,
        champion_version=champ_version,
        passed=all(c.passed for c in criteria),
        criteria=criteria,
        retrained=retrained,
        candidate_metrics=_summary(cand_eval),
        champion_metrics=_summary(champ_eval) if champ_eval is not None else None,
        baseline_metrics=_summary(baseline_eval),
        latency_ms=asdict(latency) if hasattr(latency, "__dataclass_fields__") else dict(vars(latency)),
        method=(
            f"validation split ({len(validation)} texts); latency: {latency.method}"
            if hasattr(latency, "method")
            else f"validation split ({len(validation)} texts)"
        ),
    )
    path = build_dir() / "reports" / f"gate-{name}-v{cand_version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.report_path = str(path)
    path.write_text(report.to_json())
    if log_to_mlflow:
        _log(report)
    return report


def _summary(result: Any) -> dict[str, Any]:
    return {"accuracy": result.accuracy, "macro_f1": result.macro_f1, "per_class": result.per_class}


def _log(report: GateReport) -> None:
    """Attach the report to the candidate's run and tag the version with the verdict."""
    client = registry.mlflow_client()
    version = registry.get_version(report.candidate_version)
    verdict = "passed" if report.passed else "failed"
    if version.run_id:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"gate-v{report.candidate_version}.json"
            path.write_text(report.to_json())
            client.log_artifact(version.run_id, str(path), artifact_path="gate")
        client.set_tag(version.run_id, "gate.result", verdict)
        client.log_metric(version.run_id, "gate_latency_p95_ms", float(report.latency_ms.get("p95_ms", 0.0)))
    registry.tag_version(report.candidate_version, "gate.result", verdict)
    failed = "; ".join(c.name for c in report.failures())
    registry.tag_version(report.candidate_version, "gate.failed_criteria", failed or "none")
