#!/bin/sh
# The OpenLAM image's entrypoint.
#
#   serve [ARGS…]   (default) the server on 0.0.0.0:$OPENLAM_PORT with its own worker
#   worker [ARGS…]  a queue worker (set OPENLAM_DATABASE_URL: it shares the server's database)
#   anything else   run as given, e.g. `openlam tokens create ci --role operator`, `sh`
#
# On first start it initialises the workspace ($OPENLAM_WORKSPACE, default /workspace):
# openlam.toml with commented defaults. With OPENLAM_ADMIN_PASSWORD set, the server
# (re)sets the dashboard user $OPENLAM_ADMIN_USER (default admin) to that password, so
# that it has someone to authenticate: `openlam serve` refuses a non-loopback address
# until a token or a user exists. `openlam serve` itself reads OPENLAM_BOOTSTRAP_ADMIN_TOKEN
# (an admin token with that value) and OPENLAM_TOKENS_FILE (NAME ROLE TOKEN lines, e.g. a
# compose secret) and stores them hashed, idempotently, before it listens.
set -eu

WS="${OPENLAM_WORKSPACE:-/workspace}"
export OPENLAM_WORKSPACE="$WS"

say() { printf 'openlam-entrypoint: %s\n' "$*" >&2; }

mkdir -p "$WS"
if [ ! -f "$WS/openlam.toml" ]; then
    say "initialising the workspace $WS"
    openlam init "$WS" >&2
fi

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$command" in
    serve)
        if [ -n "${OPENLAM_ADMIN_PASSWORD:-}" ]; then
            printf '%s\n' "$OPENLAM_ADMIN_PASSWORD" | openlam users add \
                "${OPENLAM_ADMIN_USER:-admin}" --role admin --password-stdin --replace \
                --workspace "$WS" >&2
        fi
        exec openlam serve --workspace "$WS" --host "${OPENLAM_HOST:-0.0.0.0}" \
            --port "${OPENLAM_PORT:-8765}" "$@"
        ;;
    worker)
        exec openlam worker --workspace "$WS" "$@"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
