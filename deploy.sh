#!/usr/bin/env bash
# One script for every way the project runs:
#   ./deploy.sh local              run the whole stack on embedded defaults (no cloud account)
#   ./deploy.sh test [pytest args] run the test suite
#   ./deploy.sh migrate            apply sql/ to the database named by DATABASE_URL
#   ./deploy.sh token EMAIL [--admin]   print a local access token for EMAIL
#   ./deploy.sh refresh            run the registry refresh once against the local stack
#   ./deploy.sh bench              benchmarks: cold-start imports, SQL API round trips
#   ./deploy.sh deploy             terraform apply in terraform/ (needs a Google Cloud project)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtualenv in $VENV" >&2
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing pinned requirements into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$want" > "$stamp"
  fi
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
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  migrate)
    ensure_venv
    : "${DATABASE_URL:?DATABASE_URL must name the database to migrate}"
    exec "$VENV/bin/python" -m common.db.migrate "$@"
    ;;
  token)
    ensure_venv
    exec "$VENV/bin/python" -m local.token "$@"
    ;;
  refresh)
    ensure_venv
    exec "$VENV/bin/python" -m local.refresh "$@"
    ;;
  bench)
    ensure_venv
    exec "$VENV/bin/python" -m benchmarks.bench "$@"
    ;;
  deploy)
    command -v terraform >/dev/null || { echo "terraform is not installed" >&2; exit 1; }
    cd terraform && terraform init -input=false && exec terraform apply "$@"
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
