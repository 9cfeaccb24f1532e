#!/usr/bin/env bash
# checkov in its own virtualenv (.venv-checkov): it pins packaging<24, which conflicts with the locked .venv.
# Pinned, with every dependency, by requirements/checkov.lock (`make lock` re-resolves it from checkov.in).
# Idempotent: skipped when the lock has not changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-checkov
stamp=$VENV/.lock-sha
want=$(sha256sum requirements/checkov.lock | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
printf '\n==> checkov into %s from requirements/checkov.lock\n' "$VENV"
command -v uv >/dev/null 2>&1 || python3 -m pip install -q --require-hashes -r requirements/uv.lock
[[ -x $VENV/bin/python ]] || uv venv -q -p python3.11 "$VENV"
VIRTUAL_ENV=$VENV uv pip sync -q --require-hashes requirements/checkov.lock
"$VENV/bin/checkov" --version
echo "$want" > "$stamp"
