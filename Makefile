# Two commands work on a fresh machine: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help
MLP := .venv/bin/mlp
PY := .venv/bin/python

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

bootstrap:  ## install Debian packages and the locked Python envs (idempotent)
	bash infra/local/bootstrap.sh all

up: bootstrap  ## start the local environment (PostgreSQL, S3, MLflow, gateway, Prometheus...)
	$(MLP) env up

down:  ## stop the local environment (data kept in .state/)
	$(MLP) env down

status:  ## health of every local server
	$(MLP) env status

models: bootstrap  ## package every model variant to ONNX (PyTorch runs only here)
	$(MLP) model package --variant all

demo: bootstrap  ## the main job on the local environment, end to end
	$(PY) -m pipelines.demo

images: bootstrap  ## build the cluster's images with podman, the GPU one included (skipped when unchanged)
	$(MLP) images build

rehearse: bootstrap  ## the cluster's images built, its pods (model server: ONNX and GGUF versions, generate model, RAG model; drift job, retraining Job, shadow comparison Job, webhook receiver) run with podman kube play against the local servers
	$(PY) -m pytest -q -m integration tests/infra/containers/test_built_images.py tests/integration/test_rehearsal.py tests/integration/test_rehearsal_llama.py tests/integration/test_rehearsal_rag.py tests/integration/test_rehearsal_retrain.py tests/integration/test_rehearsal_shadow.py tests/integration/test_rehearsal_webhook.py

lint:  ## ruff and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test-models: bootstrap  ## package the variants the tests and the demo register (the benchmark's other GGUF forms: when a test needs them)
	$(MLP) model package --variant registered

test: bootstrap  ## every test: unit, policy, synth, k8s, integration against real local servers
	$(MAKE) --no-print-directory -j2 lint test-models  # lint on one core while packaging starts
	$(PY) -m pytest -q --durations=15 -n 3  # the integration suite in two halves, each with its own local environment, the unit folders on a third worker (tests/conftest.py)

synth: bootstrap  ## synthesize every CDK Terrain stack for every environment
	$(PY) -m infra.synth

plan: synth  ## offline terraform init/validate/plan of the AWS stacks
	$(PY) -m infra.plan

bench: bootstrap models  ## benchmarks: every variant on its runtime (ONNX, llama.cpp: quantisation table), the generative model's gate (TTFT, tokens/s, cost per 1M tokens), serving layers, images and the pod, synth time, the vector stores, the RAG model (ingestion, index, latency at 1/5/10 users, cost per 1,000 answers)
	$(PY) -m pipelines.bench.runtime_bench
	$(MLP) model package-generator
	$(MLP) model gate-generator
	$(PY) -m pipelines.bench.serving_bench
	$(PY) -m pipelines.bench.images_bench
	$(PY) -m infra.tools.bench_synth
	$(PY) -m pipelines.bench.vector_store_bench
	$(MLP) env up && $(MLP) model register-generator && $(MLP) rag register-embedder && $(MLP) rag serve-embedder
	$(MLP) rag ingest && $(MLP) rag gate && $(MLP) rag register && $(MLP) rag serve latest
	$(PY) -m pipelines.bench.rag_bench

bench-finetune: bootstrap models  ## does fine-tuning the encoder pay next to retraining's head-only refit? (PyTorch, the packaging env; minutes)
	.venv-pack/bin/python -m pipelines.bench.finetune_bench

gpu-bench: bootstrap models  ## GPU against CPU, the CPU half: build/gpu-bench (what a lent GPU machine needs), then the same script on this CPU -> build/reports/gpu-bench-cpu.json (docs/gpu-infrastructure.md)
	.venv-pack/bin/python -m pipelines.packaging.gpu_export
	.venv-pack/bin/python -m pipelines.bench.gpu_bench --model-dir build/gpu-bench --out build/reports/gpu-bench-cpu.json

lock:  ## re-resolve the hash-locked requirements: main, llama, gpu, checkov, then each image's (the packaging env: lock-pack)
	uv pip compile -q --python-version 3.11 --generate-hashes requirements/main.in -o requirements/main.lock
	uv pip compile -q --python-version 3.11 --generate-hashes requirements/llama.in -c requirements/main.lock -o requirements/llama.lock
	uv pip compile -q --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes requirements/gpu.in -o requirements/gpu.lock
	uv pip compile -q --python-version 3.11 --generate-hashes requirements/checkov.in -o requirements/checkov.lock
	uv pip compile -q --python-version 3.11 --generate-hashes requirements/uv.in -o requirements/uv.lock
	uv pip compile -q --python-version 3.11 --generate-hashes requirements/gemma.in -o requirements/gemma.lock
	$(PY) -m infra.containers.locks

lock-pack:  ## re-freeze requirements/pack.lock from a fresh .venv-pack built from requirements/pack.in
	rm -rf .venv-pack && python3.11 -m venv .venv-pack
	.venv-pack/bin/pip install -q torch==2.13.0 && .venv-pack/bin/pip install -q -r requirements/pack.in
	{ head -2 requirements/pack.lock; .venv-pack/bin/pip freeze; } > requirements/pack.lock.new && mv requirements/pack.lock.new requirements/pack.lock

clean:  ## stop servers and delete local state and build outputs
	-$(MLP) env down
	rm -rf .state build infra/cdktf.out

.PHONY: help bootstrap up down status models test-models demo images rehearse lint test synth plan bench bench-finetune gpu-bench lock lock-pack clean
