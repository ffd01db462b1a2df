#!/usr/bin/env bash
# The whole test suite with everything it needs (`make test` runs this):
# - a throwaway PostgreSQL server on loopback, installed from Debian's packages if missing, so the store and
#   queue tests run on PostgreSQL as well as SQLite (skipped when DATAMILL_TEST_POSTGRES_URL names a server);
# - Debian's chromium for the web app's browser tests (Playwright drives it; no browser download).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if [[ -z "${DATAMILL_TEST_POSTGRES_URL:-}" ]]; then
    # Assigned first, so a failing start stops here: `eval "$(...)"` alone would swallow its exit status.
    pg_env=$(scripts/start-postgres.sh)
    eval "$pg_env"
    trap 'scripts/start-postgres.sh stop "$DATAMILL_TEST_POSTGRES_DIR"' EXIT
    export DATAMILL_TEST_POSTGRES_URL
fi

scripts/install-chromium.sh
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

"$PY" -m pytest "$@"
