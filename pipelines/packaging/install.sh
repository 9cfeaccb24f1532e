#!/usr/bin/env bash
# The packaging env (.venv-pack): PyTorch CPU + the base model package, pinned by requirements/pack.lock.
# pip (not uv) on purpose: pip takes torch's CPU wheel from this machine's disk (PIP_FIND_LINKS), while uv
# would resolve the multi-GB CUDA build. Idempotent: skipped when the lock has not changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=.venv-pack/.lock-sha
want=$(sha256sum requirements/pack.lock | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
printf '\n==> packaging env .venv-pack from requirements/pack.lock (PyTorch CPU; a few minutes the first time)\n'
[[ -x .venv-pack/bin/python ]] || python3.11 -m venv .venv-pack
if ! .venv-pack/bin/pip install -q --disable-pip-version-check -r requirements/pack.lock > .venv-pack/install.log 2>&1; then
  grep -v "is ignored: it is neither" .venv-pack/install.log | tail -20
  echo "pip could not install requirements/pack.lock (full log: .venv-pack/install.log)" >&2
  exit 1
fi
# Fail loudly if pip did not take the CPU build (a CUDA torch would pull GBs of nvidia-* wheels).
.venv-pack/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.endswith('+cpu') else 'torch is not the CPU build: ' + torch.__version__)"
echo "$want" > "$stamp"
