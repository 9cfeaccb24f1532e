"""The MLflow pyfunc face of a packaged model, so `mlflow.pyfunc.load_model` works on any registered version.

The artifact is the model directory itself; serving in this platform loads that directory with
`load_classifier` directly (services/model_server), so the pyfunc wrapper is for users and tooling.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from services.model_runtime.classifier import Prediction
from services.model_runtime.runtimes import load_classifier


class OnnxClassifierPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.classifier = load_classifier(context.artifacts["model_dir"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        texts = [str(t) for t in model_input["text"].tolist()]
        return self.to_frame(self.classifier.predict(texts), self.classifier.labels)

    @staticmethod
    def to_frame(predictions: list[Prediction], labels: list[str]) -> pd.DataFrame:
        rows = [
            {"label": p.label, "confidence": p.confidence, **{f"score_{lab}": p.scores[lab] for lab in labels}}
            for p in predictions
        ]
        return pd.DataFrame(rows, columns=["label", "confidence", *[f"score_{lab}" for lab in labels]])
