#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite.
#   - a virtual environment in .venv with OpenLAM and its test extras
#   - Debian's Chromium (browser actions), npm MCP servers (MCP tests)
#   - .venv-federated with the `federated` extra (Flower), for its tests
# Extra arguments go to pytest, e.g. scripts/test.sh tests/loop -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
bash scripts/install-system-deps.sh
bash scripts/install-test-deps.sh

export PATH="$PWD/.venv/bin:$PATH"
# The whole suite (no arguments) starts with the lint and type checks, and the
# federated tests, which need a venv of their own (see scripts/test-federated.sh).
if [ $# -eq 0 ]; then
    bash scripts/lint.sh
    bash scripts/test-federated.sh -q
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
