"""The registered pyfunc as models-from-code: MLflow stores this file's source, never a pickle.

`mlp model register` passes this file's path as `python_model`; `mlflow.pyfunc.load_model` runs it (with the
version's `code/` folder on the path) and takes the model object it sets. Loading a registered version therefore
executes only code that is stored as readable source beside the model and covered by its signed manifest.
"""

from mlflow.models import set_model

from services.model_runtime.pyfunc import OnnxClassifierPyfunc

set_model(OnnxClassifierPyfunc())
