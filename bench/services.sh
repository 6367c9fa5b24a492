#!/usr/bin/env bash
# PostgreSQL and Redis for the benchmarks, kept between runs (the licensing seed takes minutes).
#
#   bench/services.sh start    # PostgreSQL on 127.0.0.1:55432, Redis on 127.0.0.1:56379
#   bench/services.sh stop
#
# Data lives in var/bench-services/. PostgreSQL is configured as production would run it on a
# machine of this size (bench/postgresql.conf, included from the cluster's own config); set
# BENCH_PG_DEFAULTS=1 at start to run it with the stock configuration instead, for comparison.
# Installs the Debian packages it needs (postgresql, redis-server, wrk) when they are missing.
set -euo pipefail

# shellcheck source=bin/_lib.sh
source "$(dirname "$0")/../bin/_lib.sh"

DIR="$REPO_ROOT/var/bench-services"
PG_PORT=55432
REDIS_PORT=56379
PG_RUNAS=()
[[ $EUID -eq 0 ]] && PG_RUNAS=(runuser -u postgres --)

pg_bin() {
    # shellcheck disable=SC2012  # the paths are plain version numbers
    dirname "$(ls -1 /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1)"
}

start() {
    local missing=()
    [[ -n $(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null) ]] || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    ((${#missing[@]})) && apt_install "${missing[@]}"
    local bin
    bin="$(pg_bin)"
    mkdir -p "$DIR/pg" "$DIR/redis"
    if [[ $EUID -eq 0 ]]; then
        chmod 755 "$REPO_ROOT/var" "$DIR"
        chown postgres: "$DIR/pg"
    fi
    if [[ ! -f $DIR/pg/data/PG_VERSION ]]; then
        (cd "$DIR" && "${PG_RUNAS[@]}" "$bin/initdb" -D "$DIR/pg/data" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 >"$DIR/pg/initdb.log")
        printf "\nlisten_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
            "$PG_PORT" "$DIR/pg" >>"$DIR/pg/data/postgresql.conf"
    fi
    local conf="$DIR/pg/data/bench.conf"
    if [[ -n ${BENCH_PG_DEFAULTS:-} ]]; then : >"$conf"; else cp "$REPO_ROOT/bench/postgresql.conf" "$conf"; fi
    [[ $EUID -eq 0 ]] && chown postgres: "$conf"
    grep -q "^include_if_exists = 'bench.conf'" "$DIR/pg/data/postgresql.conf" \
        || echo "include_if_exists = 'bench.conf'" >>"$DIR/pg/data/postgresql.conf"
    # pg_ctl status, not the pid file: a machine that stopped without stopping the server leaves it.
    if ! (cd "$DIR" && "${PG_RUNAS[@]}" "$bin/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1); then
        (cd "$DIR" && "${PG_RUNAS[@]}" "$bin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w start >/dev/null)
    fi
    log "PostgreSQL on 127.0.0.1:$PG_PORT ($([[ -s $conf ]] && echo 'bench/postgresql.conf' || echo 'stock configuration'))"
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
            --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log"
    fi
    log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop() {
    if [[ -f $DIR/pg/data/postmaster.pid ]]; then
        (cd "$DIR" && "${PG_RUNAS[@]}" "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null)
    fi
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: bench/services.sh start|stop" ;;
esac
