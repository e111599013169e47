#!/usr/bin/env bash
# One script for every way the project runs:
#   ./deploy.sh local                  run the whole stack on embedded defaults (no cloud account)
#   ./deploy.sh test [pytest args]     run the test suite
#   ./deploy.sh migrate [--target T]   apply sql/ to the database named by DATABASE_URL
#   ./deploy.sh token EMAIL [--admin]  print a local access token for EMAIL
#   ./deploy.sh refresh                run the registry refresh once against the local stack
#   ./deploy.sh bench [--scale-10m]    benchmarks: cold start, overhead, round trips, streaming, scale
#   ./deploy.sh build [--out DIR]      one reproducible source zip per function in dist/
#   ./deploy.sh deploy [apply args]    check prerequisites, build, terraform apply, migrate, smoke test
#   ./deploy.sh --help                 this text
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
fail() { echo "deploy.sh: $*" >&2; exit 1; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PY" >/dev/null || fail "$PY is not installed (Python 3.11+ is needed; PYTHON names another interpreter)"
    echo "creating virtualenv in $VENV" >&2
    "$PY" -m venv "$VENV" || fail "could not create a virtualenv with $PY (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing pinned requirements into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
      || fail "installing requirements-dev.txt failed (see pip's output above)"
    echo "$want" > "$stamp"
  fi
}

local_stack_up() {
  local port=${PORT:-8080}
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
    || fail "the local stack is not running on port $port: start it with ./deploy.sh local"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  local)
    ensure_venv
    exec "$VENV/bin/python" -m local.stack "$@"
    ;;
  test)
    ensure_venv
    # --long: also the long runs (load, more fuzzing cases, every fault kind): DOCCHAT_LONG=1
    args=()
    for arg in "$@"; do
      if [ "$arg" = "--long" ]; then export DOCCHAT_LONG=1; else args+=("$arg"); fi
    done
    exec "$VENV/bin/python" -m pytest ${args[@]+"${args[@]}"}
    ;;
  migrate)
    ensure_venv
    "$VENV/bin/python" -m deploy.prereqs migrate || exit 1
    exec "$VENV/bin/python" -m common.db.migrate "$@"
    ;;
  token)
    [ $# -ge 1 ] || fail "usage: ./deploy.sh token EMAIL [--admin]"
    ensure_venv
    exec "$VENV/bin/python" -m local.token "$@"
    ;;
  refresh)
    ensure_venv
    local_stack_up
    exec "$VENV/bin/python" -m local.refresh "$@"
    ;;
  bench)
    ensure_venv
    exec "$VENV/bin/python" -m benchmarks.bench "$@"
    ;;
  build)
    ensure_venv
    exec "$VENV/bin/python" -m deploy.bundle "$@"
    ;;
  deploy)
    ensure_venv
    "$VENV/bin/python" -m deploy.prereqs deploy || exit 1
    echo "== building bundles" >&2
    "$VENV/bin/python" -m deploy.bundle
    var_file=()
    [ -n "${TFVARS:-}" ] && var_file=(-var-file="$(cd "$(dirname "$TFVARS")" && pwd)/$(basename "$TFVARS")")
    echo "== terraform apply" >&2
    terraform -chdir=terraform init -input=false
    terraform -chdir=terraform apply "${var_file[@]}" "$@"
    echo "== migrating the Supabase database" >&2
    "$VENV/bin/python" -m common.db.migrate --target supabase
    echo "== smoke test" >&2
    exec "$VENV/bin/python" -m deploy.smoke
    ;;
  help|-h|--help)
    usage
    ;;
  *)
    usage >&2
    fail "unknown command: $cmd"
    ;;
esac
