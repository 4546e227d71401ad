#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real MariaDB replication topology on loopback for the demo and the
# integration tests: a primary (13306) and two replicas (13307, 13308), GTID
# replication, pt-heartbeat writing meta.heartbeat on the primary every 0.1 s,
# and a probe user freno/freno. Every wait has a deadline.
#
#   topology.sh start|stop|status [--base-dir DIR] [--wipe]
#   topology.sh stop-node|start-node PORT [--base-dir DIR]
#
# stop leaves the datadirs in place unless --wipe is given; start reuses them.
set -euo pipefail

PRIMARY_PORT=13306
REPLICA_PORTS=(13307 13308)
ALL_PORTS=("$PRIMARY_PORT" "${REPLICA_PORTS[@]}")
BASE_DIR=${FRENO_TOPOLOGY_DIR:-/tmp/freno-topology}
PROBE_USER=freno
PROBE_PASSWORD=freno
REPL_USER=repl
REPL_PASSWORD=repl
LAG_QUERY="select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check from meta.heartbeat order by ts desc limit 1"
MARKER=.freno-topology

die() {
    echo "topology: $*" >&2
    exit 1
}

log() {
    echo "topology: $*"
}

usage() {
    cat <<EOF
usage: $0 start|stop|status [--base-dir DIR] [--wipe]
       $0 start-node|stop-node PORT [--base-dir DIR]
  start       create (first time) and start primary $PRIMARY_PORT, replicas ${REPLICA_PORTS[*]},
              replication and pt-heartbeat; waits until heartbeats reach the replicas
  stop        stop pt-heartbeat and all servers; --wipe also removes DIR
  status      print the state of every part; exit 0 only if all is healthy
  stop-node   shut one server down (used by the fault tests)
  start-node  start one server again and wait until it serves (and replicates)
  DIR defaults to \$FRENO_TOPOLOGY_DIR or /tmp/freno-topology
EOF
}

node_dir() { echo "$BASE_DIR/n$1"; }
node_sock() { echo "$BASE_DIR/n$1/mariadbd.sock"; }
node_pidfile() { echo "$BASE_DIR/n$1/mariadbd.pid"; }
hb_pidfile() { echo "$BASE_DIR/pt-heartbeat.pid"; }

is_replica() {
    local p
    for p in "${REPLICA_PORTS[@]}"; do
        [ "$p" = "$1" ] && return 0
    done
    return 1
}

# Runs SQL as root over the node's socket; prints rows tab-separated.
sql() {
    local port=$1
    shift
    mariadb --no-defaults --socket="$(node_sock "$port")" -uroot --batch --skip-column-names \
        --connect-timeout=2 -e "$*"
}

pid_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

read_pid() {
    [ -s "$1" ] && tr -dc '0-9' <"$1" || true
}

# wait_for DESCRIPTION TIMEOUT_SEC COMMAND...: polls COMMAND every 0.1 s
# until it succeeds or the deadline passes (then fails with DESCRIPTION).
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "timed out after ${timeout}s waiting for $what"
        fi
        sleep 0.1
    done
}

node_pings() {
    mariadb-admin --no-defaults --socket="$(node_sock "$1")" -uroot --connect-timeout=1 ping
}

node_running() {
    local pid
    pid=$(read_pid "$(node_pidfile "$1")")
    pid_alive "$pid"
}

write_cnf() {
    local port=$1 server_id=$2 dir
    dir=$(node_dir "$port")
    {
        echo "[mysqld]"
        echo "datadir=$dir/data"
        echo "socket=$dir/mariadbd.sock"
        echo "pid-file=$dir/mariadbd.pid"
        echo "log-error=$dir/error.log"
        echo "port=$port"
        # Loopback only; the benchmark widens it (FRENO_TOPOLOGY_BIND) to reach
        # the replicas through many 127.0.x.y addresses.
        echo "bind-address=${FRENO_TOPOLOGY_BIND:-127.0.0.1,::1}"
        echo "server-id=$server_id"
        echo "skip-name-resolve"
        echo "performance_schema=OFF"
        echo "innodb_buffer_pool_size=32M"
        echo "innodb_log_file_size=16M"
        echo "innodb_flush_log_at_trx_commit=2"
        echo "innodb_use_native_aio=0"
        echo "sync_binlog=0"
        echo "max_connections=300"
        # An account that logs in through a client plugin the connector loads
        # with dlopen() (tests/stack/costack_depth.c measures its stack use).
        echo "plugin-load-add=auth_ed25519"
        echo "gtid_strict_mode=ON"
        if is_replica "$port"; then
            echo "read_only=ON"
            echo "relay-log=relay-bin"
        else
            echo "log-bin=mysql-bin"
            echo "binlog_format=ROW"
        fi
    } >"$dir/my.cnf"
}

init_node() {
    local port=$1 server_id=$2 dir
    dir=$(node_dir "$port")
    mkdir -p "$dir"
    write_cnf "$port" "$server_id"
    if [ -d "$dir/data/mysql" ]; then
        return 0
    fi
    log "initializing datadir for $port"
    if ! mariadb-install-db --defaults-file="$dir/my.cnf" --user=root \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1; then
        cat "$dir/install.log" >&2
        die "mariadb-install-db failed for $port (log above)"
    fi
}

start_node() {
    local port=$1 dir pid
    dir=$(node_dir "$port")
    [ -f "$dir/my.cnf" ] || die "node $port was never initialized; run: $0 start"
    pid=$(read_pid "$(node_pidfile "$port")")
    if pid_alive "$pid"; then
        # A test may have SIGSTOPped it; a running topology must answer.
        kill -CONT "$pid" 2>/dev/null || true
        wait_for "mariadbd $port (pid $pid) to answer ping" 30 node_pings "$port"
        return 0
    fi
    rm -f "$(node_pidfile "$port")"
    log "starting mariadbd on $port"
    setsid nohup mariadbd --defaults-file="$dir/my.cnf" --user=root \
        </dev/null >>"$dir/stdout.log" 2>&1 &
    local child=$! deadline=$((SECONDS + 60))
    while ! node_pings "$port" >/dev/null 2>&1; do
        if ! pid_alive "$child"; then
            tail -n 30 "$dir/error.log" >&2 || true
            die "mariadbd $port exited during startup (error log above)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after 60s waiting for mariadbd $port"
        sleep 0.1
    done
}

stop_node() {
    local port=$1 pid
    pid=$(read_pid "$(node_pidfile "$port")")
    if ! pid_alive "$pid"; then
        rm -f "$(node_pidfile "$port")"
        return 0
    fi
    log "stopping mariadbd on $port (pid $pid)"
    kill -CONT "$pid" 2>/dev/null || true
    mariadb-admin --no-defaults --socket="$(node_sock "$port")" -uroot --connect-timeout=2 \
        shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while pid_alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "mariadbd $port did not stop within 60s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$(node_pidfile "$port")"
}

replication_running() {
    local status
    status=$(mariadb --no-defaults --socket="$(node_sock "$1")" -uroot --connect-timeout=2 \
        -e "SHOW SLAVE STATUS\G" 2>/dev/null) || return 1
    grep -q "Slave_IO_Running: Yes" <<<"$status" && grep -q "Slave_SQL_Running: Yes" <<<"$status"
}

heartbeat_fresh() {
    local lag
    lag=$(sql "$1" "$LAG_QUERY" 2>/dev/null) || return 1
    [ -n "$lag" ] && awk -v l="$lag" 'BEGIN { exit !(l < 0.5) }'
}

create_users() {
    local port=$1
    # freno_test (loopback only) lets the client library's unit tests run
    # real queries: test.sh passes it as FRENO_TEST_MYSQL_USER.
    # Not binlogged: every server gets its users directly, so replication
    # can start from the primary's current position.
    sql "$port" "
        SET SESSION sql_log_bin = 0;
        CREATE USER IF NOT EXISTS '$PROBE_USER'@'%' IDENTIFIED BY '$PROBE_PASSWORD';
        CREATE USER IF NOT EXISTS '$PROBE_USER'@'localhost' IDENTIFIED BY '$PROBE_PASSWORD';
        GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, BINLOG MONITOR ON *.* TO '$PROBE_USER'@'%';
        GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, BINLOG MONITOR ON *.* TO '$PROBE_USER'@'localhost';
        GRANT SELECT ON meta.* TO '$PROBE_USER'@'%';
        GRANT SELECT ON meta.* TO '$PROBE_USER'@'localhost';
        CREATE USER IF NOT EXISTS '$REPL_USER'@'%' IDENTIFIED BY '$REPL_PASSWORD';
        GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'%';
        CREATE USER IF NOT EXISTS 'freno_test'@'127.0.0.1' IDENTIFIED BY 'freno_test';
        CREATE USER IF NOT EXISTS 'freno_test'@'::1' IDENTIFIED BY 'freno_test';
        GRANT ALL ON *.* TO 'freno_test'@'127.0.0.1';
        GRANT ALL ON *.* TO 'freno_test'@'::1';
        CREATE USER IF NOT EXISTS 'freno_test_ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('freno_test');"
}

configure_replica() {
    local port=$1 configured pos
    configured=$(sql "$port" "SHOW SLAVE STATUS" | wc -l)
    if [ "$configured" -eq 0 ]; then
        pos=$(sql "$PRIMARY_PORT" "SELECT @@GLOBAL.gtid_binlog_pos")
        log "replica $port: replicating from 127.0.0.1:$PRIMARY_PORT at gtid '$pos'"
        sql "$port" "
            SET GLOBAL gtid_slave_pos = '$pos';
            CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT,
                MASTER_USER='$REPL_USER', MASTER_PASSWORD='$REPL_PASSWORD',
                MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;"
    fi
    # Idempotent: starting running threads is only a warning.
    sql "$port" "START SLAVE" >/dev/null
}

create_schema() {
    # pt-heartbeat's own table definition; binlogged so the replicas get it.
    sql "$PRIMARY_PORT" "
        CREATE DATABASE IF NOT EXISTS meta;
        CREATE TABLE IF NOT EXISTS meta.heartbeat (
            ts                    varchar(26) NOT NULL,
            server_id             int unsigned NOT NULL PRIMARY KEY,
            file                  varchar(255) DEFAULT NULL,
            position              bigint unsigned DEFAULT NULL,
            relay_master_log_file varchar(255) DEFAULT NULL,
            exec_master_log_pos   bigint unsigned DEFAULT NULL
        );"
}

start_heartbeat() {
    local pid
    pid=$(read_pid "$(hb_pidfile)")
    if pid_alive "$pid"; then
        return 0
    fi
    rm -f "$(hb_pidfile)"
    log "starting pt-heartbeat on $PRIMARY_PORT"
    pt-heartbeat --update --interval 0.1 --create-table -D meta \
        --daemonize --pid "$(hb_pidfile)" --log "$BASE_DIR/pt-heartbeat.log" \
        "h=localhost,S=$(node_sock "$PRIMARY_PORT"),u=root" ||
        die "pt-heartbeat failed to start (see $BASE_DIR/pt-heartbeat.log)"
    wait_for "pt-heartbeat pid file" 10 test -s "$(hb_pidfile)"
}

stop_heartbeat() {
    local pid
    pid=$(read_pid "$(hb_pidfile)")
    if pid_alive "$pid"; then
        log "stopping pt-heartbeat (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while pid_alive "$pid"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$(hb_pidfile)"
}

cmd_start() {
    mkdir -p "$BASE_DIR"
    touch "$BASE_DIR/$MARKER"
    local fresh=0 p
    [ -d "$(node_dir "$PRIMARY_PORT")/data/mysql" ] || fresh=1
    for p in "${REPLICA_PORTS[@]}"; do
        if [ "$fresh" -eq 0 ] && [ ! -d "$(node_dir "$p")/data/mysql" ]; then
            die "replica $p has no datadir but the primary has one; run: $0 stop --wipe"
        fi
    done

    init_node "$PRIMARY_PORT" 1
    init_node "${REPLICA_PORTS[0]}" 2
    init_node "${REPLICA_PORTS[1]}" 3
    for p in "${ALL_PORTS[@]}"; do
        start_node "$p"
    done
    for p in "${ALL_PORTS[@]}"; do
        create_users "$p"
    done
    for p in "${REPLICA_PORTS[@]}"; do
        configure_replica "$p"
    done
    create_schema
    for p in "${REPLICA_PORTS[@]}"; do
        wait_for "replication on $p (Slave_IO_Running and Slave_SQL_Running Yes)" 60 \
            replication_running "$p"
    done
    start_heartbeat
    for p in "${REPLICA_PORTS[@]}"; do
        wait_for "fresh heartbeat (lag < 0.5s) on replica $p" 60 heartbeat_fresh "$p"
    done
    print_info
}

cmd_stop() {
    local wipe=$1 p
    stop_heartbeat
    # Replicas in parallel (each shutdown takes a second or two), then the primary.
    local pids=()
    for p in "${REPLICA_PORTS[@]}"; do
        if [ -d "$(node_dir "$p")" ]; then
            stop_node "$p" &
            pids+=($!)
        fi
    done
    for p in "${pids[@]}"; do
        wait "$p" || die "stopping a replica failed"
    done
    if [ -d "$(node_dir "$PRIMARY_PORT")" ]; then
        stop_node "$PRIMARY_PORT"
    fi
    if [ "$wipe" -eq 1 ] && [ -d "$BASE_DIR" ]; then
        [ -f "$BASE_DIR/$MARKER" ] || die "$BASE_DIR lacks $MARKER; refusing to remove it"
        rm -rf "$BASE_DIR"
        log "removed $BASE_DIR"
    fi
    log "stopped"
}

cmd_status() {
    local ok=0 p pid state lag
    for p in "${ALL_PORTS[@]}"; do
        pid=$(read_pid "$(node_pidfile "$p")")
        if ! pid_alive "$pid"; then
            echo "$p: down"
            ok=1
            continue
        fi
        state=$(ps -o state= -p "$pid" 2>/dev/null | tr -d ' ')
        if [ "$state" = "T" ]; then
            echo "$p: stopped by signal (pid $pid)"
            ok=1
            continue
        fi
        if ! node_pings "$p" >/dev/null 2>&1; then
            echo "$p: not answering (pid $pid)"
            ok=1
            continue
        fi
        if ! is_replica "$p"; then
            echo "$p: primary up (pid $pid), gtid $(sql "$p" "SELECT @@GLOBAL.gtid_binlog_pos")"
            continue
        fi
        lag=$(sql "$p" "$LAG_QUERY" 2>/dev/null || echo "?")
        if replication_running "$p"; then
            echo "$p: replica up (pid $pid), replicating, heartbeat lag ${lag:-none}s"
        else
            echo "$p: replica up (pid $pid), replication NOT running, heartbeat lag ${lag:-none}s"
            ok=1
        fi
        heartbeat_fresh "$p" || ok=1
    done
    pid=$(read_pid "$(hb_pidfile)")
    if pid_alive "$pid"; then
        echo "pt-heartbeat: running (pid $pid)"
    else
        echo "pt-heartbeat: not running"
        ok=1
    fi
    return $ok
}

print_info() {
    cat <<EOF
topology: ready (base dir $BASE_DIR)
  primary   127.0.0.1:$PRIMARY_PORT  socket $(node_sock "$PRIMARY_PORT")
  replica   127.0.0.1:${REPLICA_PORTS[0]}  socket $(node_sock "${REPLICA_PORTS[0]}")
  replica   127.0.0.1:${REPLICA_PORTS[1]}  socket $(node_sock "${REPLICA_PORTS[1]}")
  probe user  $PROBE_USER / $PROBE_PASSWORD (also over [::1])
  admin       mariadb --socket=$(node_sock "${REPLICA_PORTS[0]}") -uroot
  lag query   $LAG_QUERY
EOF
}

main() {
    [ $# -ge 1 ] || {
        usage
        exit 2
    }
    local cmd=$1 wipe=0 port=""
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        --base-dir)
            [ $# -ge 2 ] || die "--base-dir needs a value"
            BASE_DIR=$2
            shift 2
            ;;
        --base-dir=*)
            BASE_DIR=${1#*=}
            shift
            ;;
        --wipe)
            wipe=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        [0-9]*)
            port=$1
            shift
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
        esac
    done
    case $cmd in
    start) cmd_start ;;
    stop) cmd_stop "$wipe" ;;
    status) cmd_status ;;
    stop-node | start-node)
        [ -n "$port" ] || die "$cmd needs a port"
        [ -d "$(node_dir "$port")" ] || die "no node on port $port under $BASE_DIR"
        if [ "$cmd" = stop-node ]; then
            stop_node "$port"
        else
            start_node "$port"
            if is_replica "$port"; then
                wait_for "replication on $port" 60 replication_running "$port"
            fi
        fi
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
