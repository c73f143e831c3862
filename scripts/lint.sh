#!/usr/bin/env bash
# Style and types, so they can't rot: ruff's lint and format check, then pyright.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/pyright
