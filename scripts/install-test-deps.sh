#!/usr/bin/env bash
# Installs the npm MCP servers the tests talk to into a project-local directory
# (.cache/npm, ignored by git). Safe to run again: it does nothing when the pinned
# versions are already there. Needs node and npm (Debian: apt-get install nodejs npm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${OPENLAM_NPM_PREFIX:-$ROOT/.cache/npm}"
PACKAGES=(
  "@modelcontextprotocol/server-filesystem@2026.8.31"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "install-test-deps: npm not found; the npm MCP server tests will be skipped" >&2
  echo "  fix: apt-get install -y nodejs npm, then run this script again" >&2
  exit 0
fi

missing=()
for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"
  version="${spec##*@}"
  manifest="$PREFIX/node_modules/$name/package.json"
  if [[ -f "$manifest" ]] && node -e \
      'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$manifest" "$version"; then
    continue
  fi
  missing+=("$spec")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-test-deps: npm MCP servers already installed in $PREFIX"
  exit 0
fi

mkdir -p "$PREFIX"
echo "install-test-deps: installing ${missing[*]} into $PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "${missing[@]}"
