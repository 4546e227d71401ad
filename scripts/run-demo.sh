#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# THE run command: installs what is missing, builds a release binary into
# build-release/, starts the MariaDB topology (primary 13306, replicas 13307
# and 13308, pt-heartbeat), writes a single-node demo config and runs the
# daemon in the foreground on port 8087 (FRENO_DEMO_PORT overrides).
# Ctrl-C stops the daemon and the topology (--keep-topology leaves it up).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${FRENO_DEMO_PORT:-8087}
BUILD_DIR=build-release
TOPO_DIR=${FRENO_TOPOLOGY_DIR:-/tmp/freno-topology}
KEEP_TOPOLOGY=0
for arg in "$@"; do
    case $arg in
    --keep-topology) KEEP_TOPOLOGY=1 ;;
    -h | --help)
        sed -n '2,8p' "$0"
        exit 0
        ;;
    *)
        echo "run-demo: unknown argument $arg" >&2
        exit 2
        ;;
    esac
done

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSANITIZE= >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)"

bash scripts/topology.sh start --base-dir "$TOPO_DIR"
if [ "$KEEP_TOPOLOGY" -eq 0 ]; then
    trap 'echo; bash scripts/topology.sh stop --base-dir "$TOPO_DIR"' EXIT
fi

DEMO_DIR="$TOPO_DIR/demo"
CONF="$DEMO_DIR/freno.conf.json"
mkdir -p "$DEMO_DIR"
LAG_QUERY="select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check from meta.heartbeat order by ts desc limit 1"
cat >"$CONF" <<JSON
{
  "ListenPort": $PORT,
  "RaftDataDir": "$DEMO_DIR/raft",
  "RaftNodes": [],
  "Stores": {
    "MySQL": {
      "User": "freno",
      "Password": "freno",
      "MetricQuery": "$LAG_QUERY",
      "ThrottleThreshold": 1.0,
      "Clusters": {
        "main": {
          "StaticHostsSettings": { "Hosts": ["127.0.0.1:13307", "127.0.0.1:13308"] }
        },
        "replica1": {
          "StaticHostsSettings": { "Hosts": ["127.0.0.1:13307"] }
        },
        "replica2": {
          "StaticHostsSettings": { "Hosts": ["127.0.0.1:13308"] }
        }
      }
    }
  }
}
JSON

R1_SOCK="$TOPO_DIR/n13307/mariadbd.sock"
cat <<EOF

freno demo: http://127.0.0.1:$PORT   (config $CONF)
  curl -s localhost:$PORT/check/myapp/mysql/main          # 200 while both replicas lag < 1 s
  curl -sI localhost:$PORT/check/myapp/mysql/main         # HEAD: status only, what clients use
  curl -s localhost:$PORT/aggregated-metrics              # lag per cluster
  curl -s localhost:$PORT/throttle-app/myapp/ttl/10/ratio/0.5   # deny half of myapp's checks
  curl -s localhost:$PORT/throttled-apps
  curl -s localhost:$PORT/unthrottle-app/myapp
  curl -s localhost:$PORT/help
make replica1 lag (checks on main and replica1 turn 429 after ~1 s):
  mariadb --socket=$R1_SOCK -uroot -e 'STOP SLAVE SQL_THREAD'
  mariadb --socket=$R1_SOCK -uroot -e 'START SLAVE SQL_THREAD'
Ctrl-C stops the daemon$([ "$KEEP_TOPOLOGY" -eq 0 ] && echo " and the topology").

EOF

rc=0
"$BUILD_DIR/freno" --http --config "$CONF" --http-port "$PORT" || rc=$?
exit "$rc"

