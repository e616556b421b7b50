#!/usr/bin/env bash
# Idempotent set-up shared by `make demo`, `make test` and .ci/run:
#   1. Debian packages: docker.io (engine), debootstrap (offline base image), chromium (report test);
#   2. a virtualenv in .venv with the package and its test extra (pip's cache kept);
#   3. a running Docker daemon (started here if none answers);
#   4. the default model (fetched once into the user's cache, ~/.cache/apigen-local/models or
#      $APIGEN_HOME/models, where every working folder finds it), the tiny test model, the sandbox
#      image and two real chat templates for the export tests (.cache/chat-templates).
# Each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/apigen-local-dockerd.log}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step_apt() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v chromium >/dev/null || missing+=(chromium)  # the run report's real-browser test
  if [ ${#missing[@]} -eq 0 ]; then say "apt: docker.io, debootstrap and chromium present"; return; fi
  say "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

step_venv() {
  local stamp="$VENV/.apigen-installed" want
  want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then say "venv: up to date"; return; fi
  say "venv: installing the package and its test extra into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c scripts/constraints.txt -e '.[test]'
  echo "$want" > "$stamp"
}

step_dockerd() {
  if docker info >/dev/null 2>&1; then say "docker: daemon answers"; return; fi
  say "docker: starting dockerd (log: $DOCKERD_LOG)"
  as_root sh -c "nohup dockerd --bridge=none --iptables=false >'$DOCKERD_LOG' 2>&1 &"
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then return; fi
    sleep 1
  done
  echo "dockerd did not answer within 60 s; see $DOCKERD_LOG" >&2
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  exit 1
}

step_artifacts() {
  say "model: default model (fetched once into the user's cache) and tiny test GGUF"
  # writes to the user's cache, not to models/: from any folder 'apigen-local model find' finds it
  # there. A checked copy already in models/ (an earlier set-up) is linked, not downloaded again.
  "$VENV/bin/apigen-local" model fetch
  "$VENV/bin/apigen-local" model build-tiny
  say "sandbox: image"
  as_root "$VENV/bin/apigen-local" sandbox build
  say "chat templates for the messages export's tests (from llama-cpp-python's source, once)"
  "$VENV/bin/python" scripts/fetch_chat_templates.py .cache/chat-templates
}

step_apt
step_venv
step_dockerd
step_artifacts
