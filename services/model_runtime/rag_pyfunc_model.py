"""A registered RAG version's pyfunc as models-from-code (as pyfunc_model.py for the classifier): source, no pickle."""

from mlflow.models import set_model

from services.model_runtime.rag_pyfunc import RagPyfunc

set_model(RagPyfunc())
