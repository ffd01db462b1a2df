#!/usr/bin/env bash
# Debian's chromium for the web app's browser tests (driven by Playwright with executablePath set; Playwright's
# own browser download is never used). Does nothing when chromium is already on PATH.
#
#   scripts/install-chromium.sh
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

if command -v chromium >/dev/null 2>&1; then
    log "chromium found at $(command -v chromium)"
    exit 0
fi
log "chromium not found; installing it from Debian's packages"
sudo=""
if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
$sudo apt-get update >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >&2
log "installed $(command -v chromium)"
