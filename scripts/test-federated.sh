#!/usr/bin/env bash
# The federated-sharing tests, in a venv of their own (.venv-federated) with
# OpenLAM's `federated` extra: Flower (flwr) pins its own server stack (fastapi,
# starlette, uvicorn, typer, rich, cryptography, protobuf) below the versions OpenLAM
# otherwise gets, so installing it into .venv would test everything else against older
# libraries than users get. Also type-checks the Flower module against the real Flower.
# Extra arguments go to pytest. scripts/test.sh runs this first when run with none.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv-federated/bin/python ]; then
    python3 -m venv .venv-federated
fi
.venv-federated/bin/python -m pip install -q --upgrade pip
.venv-federated/bin/python -m pip install -q -e '.[federated]' \
    'pytest>=8.3,<10' 'pytest-asyncio>=0.25,<2' 'pytest-timeout>=2.3,<3'

if [ -x .venv/bin/pyright ]; then
    .venv/bin/pyright -p scripts/pyright-federated.json
fi
exec .venv-federated/bin/python -m pytest -p no:cacheprovider tests/learning/test_federated.py "$@"
