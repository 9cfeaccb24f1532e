"""Current traffic against the reference with Evidently's DataDriftPreset; the result as plain data.

Numeric features use the two-sample Kolmogorov-Smirnov test and the predicted label the chi-squared test, both
at `policy().drift.stattest_threshold` (a p-value): set explicitly, because Evidently's automatic choice switches
to distance measures with other thresholds once a sample exceeds 1,000 rows, which would change what the policy
value means with the traffic volume (docs/decisions/0110-evidently-for-drift.md).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from pipelines.drift.features import CATEGORICAL_COLUMNS, FEATURE_COLUMNS, NUMERIC_COLUMNS

NUM_METHOD = "ks"
CAT_METHOD = "chisquare"
Status = Literal["ok", "drift", "insufficient"]


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    method: str
    p_value: float
    drifted: bool


@dataclass
class DriftResult:
    model_name: str
    model_version: int | None
    status: Status
    samples: int
    reference_rows: int
    share: float | None  # share of drifted features; None when insufficient
    threshold: float
    stattest_threshold: float
    window_since: str
    window_until: str
    features: list[FeatureDrift] = field(default_factory=list)
    message: str = ""
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_json(self) -> str:
        data = asdict(self)
        data["drifted_features"] = self.drifted_features
        return json.dumps(data, indent=2) + "\n"


def run_report(current: pd.DataFrame, reference: pd.DataFrame, stattest_threshold: float, drift_share: float) -> Any:
    """The Evidently snapshot (kept for its HTML)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC_COLUMNS, categorical_columns=CATEGORICAL_COLUMNS)
    preset = DataDriftPreset(
        columns=FEATURE_COLUMNS,
        num_method=NUM_METHOD,
        cat_method=CAT_METHOD,
        threshold=stattest_threshold,
        drift_share=drift_share,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy/evidently chatter on constant columns; results are unaffected
        return Report([preset]).run(
            current_data=Dataset.from_pandas(current[FEATURE_COLUMNS], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[FEATURE_COLUMNS], data_definition=definition),
        )


def feature_results(snapshot: Any, stattest_threshold: float) -> tuple[float, list[FeatureDrift]]:
    """(share of drifted features, per-feature p-values) from the snapshot's metrics."""
    share: float | None = None
    features: list[FeatureDrift] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith(":ValueDrift"):
            p_value = float(metric["value"])
            features.append(FeatureDrift(config["column"], config["method"], p_value, p_value < stattest_threshold))
    if share is None or len(features) != len(FEATURE_COLUMNS):
        raise RuntimeError(
            f"unexpected Evidently result ({len(features)} feature results, share {share}); "
            "is evidently 0.7 installed (requirements/main.lock)?"
        )
    return share, features


def write_outputs(result: DriftResult, snapshot: Any | None, out_dir: Path) -> tuple[Path, Path | None]:
    """`<out_dir>/<model>-v<N>-<UTC time>.json` (+ `.html` with the Evidently report) and `latest.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(result.checked_at).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{result.model_name}-v{result.model_version if result.model_version is not None else 'local'}-{stamp}"
    json_path = out_dir / f"{stem}.json"
    text = result.to_json()
    json_path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    html_path = None
    if snapshot is not None:
        html_path = out_dir / f"{stem}.html"
        snapshot.save_html(str(html_path))
    return json_path, html_path
