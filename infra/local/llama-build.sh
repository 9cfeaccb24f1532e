# Sourced by infra/local/bootstrap.sh and pipelines/packaging/install.sh: how llama-cpp-python is built, and a rebuild
# when those flags change. uv caches the wheel it built from the source package by the package's hash alone, not by
# CMAKE_ARGS, so a change of flags clears that cached wheel once per machine and reinstalls it in each env.
# shellcheck source=../../requirements/llama-cpp.env
source requirements/llama-cpp.env

# Before syncing the env in $1 (its folder): clears uv's cached build when the flags changed, and takes out of the env
# a llama-cpp-python built with other flags (uv's --reinstall-package would rebuild it even when the cache is right).
llama_prepare() {
  local cache_stamp; cache_stamp="$(uv cache dir)/.mlp-llama-cmake-args"
  if [[ ! -f $cache_stamp || "$(cat "$cache_stamp")" != "$LLAMA_CMAKE_ARGS" ]]; then
    uv cache clean -q llama-cpp-python || true
    mkdir -p "$(dirname "$cache_stamp")" && echo "$LLAMA_CMAKE_ARGS" > "$cache_stamp"
  fi
  if [[ ! -f $1/.llama-cmake-args || "$(cat "$1/.llama-cmake-args")" != "$LLAMA_CMAKE_ARGS" ]]; then
    VIRTUAL_ENV=$1 uv pip uninstall -q llama-cpp-python 2>/dev/null || true
  fi
}

# Record, after a successful sync, the flags the env in $1 was built with.
llama_record_flags() { echo "$LLAMA_CMAKE_ARGS" > "$1/.llama-cmake-args"; }
