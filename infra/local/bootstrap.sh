#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine (idempotent, quick when done):
# Debian packages for the local servers, the locked Python env (.venv), and, when asked, the
# packaging env with PyTorch CPU (.venv-pack) and checkov's own env (.venv-checkov).
set -euo pipefail
cd "$(dirname "$0")/../.."
want="${1:-runtime}"   # runtime | pack | checkov | all

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=llama-build.sh
source infra/local/llama-build.sh

install_apt() {
  local missing=()
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < infra/local/apt-packages.txt
  if ((${#missing[@]})); then
    step "apt: installing ${missing[*]}"
    # Debian would start each service system-wide on install; the project runs its own copies.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  fi
}

ensure_uv() {
  command -v uv >/dev/null 2>&1 || { step "installing uv"; python3 -m pip install -q --require-hashes -r requirements/uv.lock; }
}

install_runtime_venv() {
  ensure_uv
  local stamp=.venv/.lock-sha
  # The editable install lists the top-level packages from pyproject.toml: a new package needs a reinstall too.
  local want_sha; want_sha=$(cat requirements/main.lock requirements/llama.lock requirements/llama-cpp.env pyproject.toml | sha256sum | cut -d' ' -f1)
  if [[ -f $stamp && "$(cat $stamp)" == "$want_sha" ]]; then return; fi
  step "Python env .venv from requirements/main.lock and llama.lock"
  [[ -d .venv ]] || uv venv -q -p python3.11 .venv
  llama_prepare .venv
  if ! uv cache dir >/dev/null 2>&1 || ! find "$(uv cache dir)" -maxdepth 4 -name 'llama_cpp_python*' 2>/dev/null | grep -q .; then
    echo "    llama-cpp-python is built from its source package the first time (about 5 minutes on 2 cores; cached after)"
  fi
  CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}" VIRTUAL_ENV=.venv uv pip sync -q --require-hashes requirements/main.lock requirements/llama.lock
  llama_record_flags .venv
  VIRTUAL_ENV=.venv uv pip install -q --no-deps -e .
  echo "$want_sha" > "$stamp"
}

install_apt
ensure_uv
# checkov's env installs beside the others (its own lock, nothing built). The packaging env waits for the runtime env:
# both take llama-cpp-python from its source package, and two uv processes fetching it at once each build it (two
# cache revisions), where one after the other the second takes the first's wheel from uv's cache.
checkov_pid=""
case "$want" in checkov|all) bash infra/tools/install-checkov.sh & checkov_pid=$! ;; esac
install_runtime_venv
case "$want" in pack|all) bash pipelines/packaging/install.sh ;; esac
if [[ -n $checkov_pid ]]; then wait "$checkov_pid"; fi
