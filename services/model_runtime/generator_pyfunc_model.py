"""A registered generator's pyfunc as models-from-code (as pyfunc_model.py for the classifier): source, no pickle."""

from mlflow.models import set_model

from services.model_runtime.generator_pyfunc import GeneratorPyfunc

set_model(GeneratorPyfunc())
