#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite.
#   - a virtual environment in .venv with OpenLAM and its test extras
#   - Debian's Chromium (browser actions), npm MCP servers (MCP tests)
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
# The whole suite (no arguments) starts with the lint and type checks.
if [ $# -eq 0 ]; then
    bash scripts/lint.sh
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
