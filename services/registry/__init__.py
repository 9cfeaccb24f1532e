"""The model registry (MLflow) as the platform's processes see it; shipped in the model server's image."""
