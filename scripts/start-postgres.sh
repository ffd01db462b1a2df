#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite: its own cluster in a temp dir, on 127.0.0.1, on a free port.
#
#   eval "$(scripts/start-postgres.sh)"        # start; exports DATAMILL_TEST_POSTGRES_URL and _DIR
#   scripts/start-postgres.sh stop "$DIR"      # stop it and remove the cluster
#
# Installs PostgreSQL from Debian's packages when it is missing. Only `export` lines go to stdout (so the
# output can be eval'd); everything else goes to stderr. Authentication is `trust`: the server listens on
# loopback only, lives for one test run, and holds nothing but test data.
set -euo pipefail

log() { echo "start-postgres: $*" >&2; }

pg_bindir() {
    # The newest installed major version's binaries (Debian keeps them out of PATH).
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

ensure_installed() {
    if [[ -n "$(pg_bindir)" ]]; then
        return
    fi
    log "PostgreSQL not found; installing it from Debian's packages"
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends postgresql >&2
}

# Run a PostgreSQL binary as the cluster's owner: initdb and postgres refuse to run as root.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    ensure_installed
    local bin dir port
    bin=$(pg_bindir)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/datamill-pg.XXXXXX")
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
    port=$(free_port)
    log "starting PostgreSQL ($bin) on 127.0.0.1:$port, cluster in $dir"
    # -k: the unix socket goes in the cluster dir, not /var/run/postgresql (which may not exist or be ours).
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >&2
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres datamill_test >&2
    echo "export DATAMILL_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/datamill_test"
    echo "export DATAMILL_TEST_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:-${DATAMILL_TEST_POSTGRES_DIR:-}}
    if [[ -z "$dir" || ! -d "$dir/data" ]]; then
        log "no cluster to stop"
        return
    fi
    as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-start}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) log "usage: $0 [start | stop DIR]"; exit 2 ;;
esac
