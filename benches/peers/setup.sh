#!/bin/sh
# Installs the peer PVM implementations that benches/bench_peers.py compares (idempotent):
#   - npm: @fluffylabs/anan-as and @typeberry/lib, pinned in package.json / package-lock.json
#   - PyPI: tsrkit-pvm (Python 3.12 only) in benches/peers/.venv312 (requirements-tsrkit.txt)
# Python 3.12 is taken from $PYTHON312, else python3.12 on PATH (also through pyenv shims).
# Exits non-zero if a part could not be installed; bench_peers.py then reports it as missing.
set -u
cd "$(dirname "$0")"
failed=0

if command -v npm >/dev/null 2>&1; then
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
     || [ package.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --silent || failed=1
  fi
else
  echo "peers: npm not found: anan-as and typeberry are not installed" >&2
  failed=1
fi

is312() { "$@" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }
py312=""
if [ -n "${PYTHON312:-}" ] && is312 "$PYTHON312"; then
  py312="$PYTHON312"
elif is312 python3.12; then
  py312=python3.12
elif PYENV_VERSION=3.12 is312 python3.12; then
  py312="env PYENV_VERSION=3.12 python3.12"
fi
if [ -z "$py312" ]; then
  echo "peers: no Python 3.12 found (set PYTHON312=...): tsrkit-pvm is not installed" >&2
  failed=1
elif [ ! -f .venv312/.stamp ] || [ requirements-tsrkit.txt -nt .venv312/.stamp ]; then
  # shellcheck disable=SC2086
  { [ -x .venv312/bin/python ] || $py312 -m venv .venv312; } \
    && .venv312/bin/python -m pip install -q --disable-pip-version-check -r requirements-tsrkit.txt \
    && touch .venv312/.stamp || failed=1
fi
exit $failed
