#!/usr/bin/env bash
# checkov in its own virtualenv (.venv-checkov): it pins packaging<24, which conflicts with the locked .venv.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHECKOV_VERSION="3.3.30"
VENV=.venv-checkov
if [[ -x $VENV/bin/checkov ]] && [[ "$($VENV/bin/python -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" == "$CHECKOV_VERSION" ]]; then
  exit 0
fi
printf '\n==> checkov %s into %s\n' "$CHECKOV_VERSION" "$VENV"
PY=$(command -v python3.11 || command -v python3)
if command -v uv >/dev/null 2>&1; then
  [[ -x $VENV/bin/python ]] || uv venv -q -p "$PY" "$VENV"
  VIRTUAL_ENV=$VENV uv pip install -q "checkov==$CHECKOV_VERSION"
else
  [[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi
"$VENV/bin/checkov" --version
