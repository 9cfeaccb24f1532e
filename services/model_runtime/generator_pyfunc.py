"""The MLflow pyfunc face of a packaged generator, so `mlflow.pyfunc.load_model` works on a registered generator
version (a `prompt` column in, a `text` column out, greedy). The generate server loads the folder directly."""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from services.model_runtime.generator import GgufGenerator

PYFUNC_CONTEXT_TOKENS = 1024
PYFUNC_NEW_TOKENS = 64


class GeneratorPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        self.generator = GgufGenerator.load(
            context.artifacts["model_dir"], context_tokens=PYFUNC_CONTEXT_TOKENS, threads=1
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        tokens = int((params or {}).get("max_tokens", PYFUNC_NEW_TOKENS))
        texts = [self.generator.generate(str(p), tokens).text for p in model_input["prompt"].tolist()]
        return pd.DataFrame({"text": texts})
