#!/usr/bin/env bash
# Install the system packages OpenLAM's built-in actions need, from Debian's archive.
#
#   - fonts-dejavu-core: Unicode text in PDF documents.
#   - chromium: driven by Playwright for the browser.* actions (Playwright's own
#     `playwright install` downloads a browser build, which is not always possible;
#     Debian's Chromium works the same and is updated with the system).
#
# Idempotent: installs only what is missing. Skips (exit 0, with a message) when not
# root or when apt-get is not available, so it is safe to call from any setup script.
# Set OPENLAM_CHROMIUM to check another Chromium path than /usr/bin/chromium.
set -euo pipefail

CHROMIUM="${OPENLAM_CHROMIUM:-/usr/bin/chromium}"

say() { printf 'install-system-deps: %s\n' "$*"; }

missing=()
if [ -x "$CHROMIUM" ]; then
    say "chromium present at $CHROMIUM"
else
    missing+=(chromium)
fi
# DejaVu: a Unicode font for PDF documents (documents.write_pdf); without it, text that
# Latin-1 cannot hold is transliterated.
if [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    say "DejaVu fonts present"
else
    missing+=(fonts-dejavu-core)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    say "nothing to install"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not found; install these yourself: ${missing[*]} (skipped)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "not root; run as root or: sudo apt-get install -y ${missing[*]} (skipped)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
say "installing: ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

if [ -x "$CHROMIUM" ]; then
    say "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
    say "chromium package installed but $CHROMIUM is missing" >&2
    exit 1
fi
