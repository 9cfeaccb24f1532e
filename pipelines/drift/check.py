"""`mlp drift check`: logged inferences of one version over a window against that version's reference.

`check_version` is the whole scheduled check (resolve, read, score, report, push); `mlp drift check`, the drift
demo and the cluster's CronJob (`pipelines.drift.job`) run it, so there is one implementation of the check. Where it
reads logs from and keeps files is the caller's: the local runtime's (`pipelines.drift.local`) or a pod's scratch
folder. Nothing here imports the local runtime, so the drift-job image ships without it.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import contracts, endpoints
from core.policy import policy
from pipelines.drift import features, logs, reference
from pipelines.drift.push import JOB, PushError, push_result
from pipelines.drift.report import DriftResult, FeatureDrift, feature_results, run_report, write_outputs
from services.model_runtime.classifier import TextClassifier
from services.model_runtime.runtimes import load_classifier

# Exit codes of `mlp drift check` (documented in docs/drift.md): schedulers alert on a non-zero exit too.
EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2
EXIT_INSUFFICIENT = 3
SAMPLE_SEED = 0
Say = Callable[[str], None]
S3Factory = Callable[[], Any]  # a boto3 S3 client, made inside the check so a failure is reported like any other


@dataclass(frozen=True)
class Workspace:
    """Where a check keeps downloaded versions, cached references and its reports."""

    models: Path
    references: Path
    reports: Path

    @classmethod
    def under(cls, root: Path) -> Workspace:
        return cls(root / "models", root / "reference", root / "reports")


@dataclass(frozen=True)
class CheckRequest:
    model_name: str
    version: int | None
    model_dir: Path
    window: logs.Window
    bucket: str
    out_dir: Path
    references: Path
    reference_limit: int | None = None


@dataclass(frozen=True)
class CheckOutcome:
    result: DriftResult
    json_path: Path
    html_path: Path | None

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "drift": EXIT_DRIFT, "insufficient": EXIT_INSUFFICIENT}[self.result.status]


def score(
    classifier: TextClassifier,
    ref: reference.Reference,
    texts: list[str],
    served: list[features.ServedPrediction],
) -> tuple[float, list[FeatureDrift], Any]:
    """(share of drifted features, per-feature results, Evidently snapshot) of texts against the reference."""
    d = policy().drift
    embeddings = features.embed(classifier, texts)
    current = features.feature_frame(classifier, texts, embeddings, ref.space, served)
    snapshot = run_report(current, ref.frame, d.stattest_threshold, d.threshold)
    share, per_feature = feature_results(snapshot, d.stattest_threshold)
    return share, per_feature, snapshot


def run_check(request: CheckRequest, s3: Any, progress: Callable[[str], None] = print) -> CheckOutcome:
    """Read the window's logs, featurise, compare with Evidently, write the reports. Pushing is the caller's."""
    d = policy().drift
    if request.version is None:
        raise ValueError("a model version is needed to find its inference logs")
    stats = logs.ReadStats()
    records = logs.read_records(s3, request.bucket, request.model_name, request.version, request.window, stats)
    progress(
        f"read {len(records)} logged inferences of {request.model_name} v{request.version} "
        f"from {stats.files} files ({request.window.since:%Y-%m-%d %H:%M} .. {request.window.until:%Y-%m-%d %H:%M} UTC)"
        + (f"; skipped {stats.malformed} malformed lines" if stats.malformed else "")
    )
    insufficient = DriftResult(
        model_name=request.model_name,
        model_version=request.version,
        status="insufficient",
        samples=len(records),
        reference_rows=0,
        share=None,
        threshold=d.threshold,
        stattest_threshold=d.stattest_threshold,
        window_since=request.window.since.isoformat(timespec="seconds"),
        window_until=request.window.until.isoformat(timespec="seconds"),
        message=(
            f"only {len(records)} logged inferences in the window, policy drift.min_samples is {d.min_samples}: "
            "no drift verdict. Widen the window (--hours/--since), or check that the version serves traffic "
            "and that its inference log reaches the bucket (runbooks/inference-log-samples-dropped.md)."
        ),
    )
    if len(records) < d.min_samples:
        json_path, _ = write_outputs(insufficient, None, request.out_dir)
        return CheckOutcome(insufficient, json_path, None)
    if len(records) > d.max_samples:
        progress(f"scoring a uniform sample of {d.max_samples} of them (policy drift.max_samples)")
        records = random.Random(SAMPLE_SEED).sample(records, d.max_samples)
    classifier = load_classifier(request.model_dir)
    ref = reference.load_or_build(classifier, request.version, request.references, request.reference_limit, progress)
    served = [features.ServedPrediction(r.label, r.confidence) for r in records]
    share, per_feature, snapshot = score(classifier, ref, [r.text for r in records], served)
    drifted = share > d.threshold
    result = dataclasses.replace(
        insufficient,
        status="drift" if drifted else "ok",
        samples=len(records),
        reference_rows=len(ref.frame),
        share=share,
        features=per_feature,
        message=(
            f"{sum(f.drifted for f in per_feature)}/{len(per_feature)} features drifted "
            f"(share {share:.2f} {'>' if drifted else '<='} threshold {d.threshold:g})"
        ),
    )
    json_path, html_path = write_outputs(result, snapshot, request.out_dir)
    return CheckOutcome(result, json_path, html_path)


# ---------------------------------------------------------------- the scheduled check, end to end


def resolve_model(version: str, model_dir: Path | None, models: Path, model_name: str) -> tuple[int, Path]:
    """(version number, model directory): from the registry, or a local packaged model for a given number."""
    if model_dir is not None:
        if not version.isdigit():
            raise ValueError("with a model directory, the version must be the number the logs are filed under")
        return int(version), model_dir
    from services.registry.client import download_version, resolve_version

    number = resolve_version(version, model_name)
    return number, download_version(number, model_name, cache_root=models)


def verdict_lines(outcome: CheckOutcome) -> list[str]:
    """What a person reads: one line per feature, the verdict, where the reports are."""
    result = outcome.result
    lines = [
        f"  {f.name:<24} {f.method:<10} p={f.p_value:.4f}  {'DRIFT' if f.drifted else 'ok'}" for f in result.features
    ]
    lines.append(f"{result.status.upper()}: {result.message}")
    lines.append(f"report: {outcome.json_path}" + (f" and {outcome.html_path}" if outcome.html_path else ""))
    return lines


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_version(
    version: str,
    window: logs.Window,
    *,
    s3: S3Factory,
    workspace: Workspace,
    model_name: str | None = None,
    model_dir: Path | None = None,
    bucket: str = contracts.INFERENCE_LOG_BUCKET,
    push: bool = True,
    pushgateway: str | None = None,
    reference_limit: int | None = None,
    say: Say = print,
    warn: Say = _stderr,
) -> int:
    """Check one version (number or alias) over the window, print the verdict, push it; return the exit code."""
    try:
        name = model_name or policy().release.default_model
        number, directory = resolve_model(version, model_dir, workspace.models, name)
        request = CheckRequest(
            model_name=name,
            version=number,
            model_dir=directory,
            window=window,
            bucket=bucket,
            out_dir=workspace.reports,
            references=workspace.references,
            reference_limit=reference_limit,
        )
        outcome = run_check(request, s3(), progress=say)
    except Exception as exc:  # registry, S3, model files: name it and stop with the error code
        warn(f"drift check failed: {exc}")
        return EXIT_ERROR
    for line in verdict_lines(outcome):
        say(line)
    if push:
        url = pushgateway or endpoints.pushgateway_url()
        try:
            push_result(outcome.result, url)
        except PushError as exc:
            warn(str(exc))
            return EXIT_ERROR
        say(f"pushed to {url} (job {JOB}, model_version={outcome.result.model_version})")
    return outcome.exit_code
