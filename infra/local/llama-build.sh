# Sourced by infra/local/bootstrap.sh and pipelines/packaging/install.sh: how llama-cpp-python is built, and a rebuild
# when those flags change. uv caches the wheel it built from the source package by the package's hash alone, not by
# CMAKE_ARGS, so a change of flags clears that cached wheel once per machine and reinstalls it in each env.
# shellcheck source=../../requirements/llama-cpp.env
source requirements/llama-cpp.env

# Print uv's extra arguments for syncing the env in $1 (its folder); clears uv's cached build when the flags changed.
llama_sync_args() {
  local cache_stamp; cache_stamp="$(uv cache dir)/.mlp-llama-cmake-args"
  if [[ ! -f $cache_stamp || "$(cat "$cache_stamp")" != "$LLAMA_CMAKE_ARGS" ]]; then
    uv cache clean -q llama-cpp-python >&2 || true
    mkdir -p "$(dirname "$cache_stamp")" && echo "$LLAMA_CMAKE_ARGS" > "$cache_stamp"
  fi
  if [[ -f $1/.llama-cmake-args && "$(cat "$1/.llama-cmake-args")" == "$LLAMA_CMAKE_ARGS" ]]; then return; fi
  echo "--reinstall-package llama-cpp-python"
}

# Record, after a successful sync, the flags the env in $1 was built with.
llama_record_flags() { echo "$LLAMA_CMAKE_ARGS" > "$1/.llama-cmake-args"; }
