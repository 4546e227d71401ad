#!/usr/bin/env bash
# Benchmark (not a test): check throughput and latency against HAProxy
# answering a constant 200, idle cost with 3 probed hosts, cost with 500
# probed hosts, and time to the first 200. Prints a summary table.
# Usage: bench/run.sh [--quick]   (needs the demo topology; starts it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
DUR=10; ROUNDS=3; IDLE_SECS=30
if [ "$QUICK" = 1 ]; then DUR=4; ROUNDS=1; IDLE_SECS=10; fi
WORK=${BENCH_DIR:-/tmp/freno-bench}
FRENO_PORT=18901
HAPROXY_PORT=18902
mkdir -p "$WORK"

bash scripts/setup.sh >/dev/null
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSANITIZE= >/dev/null
make -C build-release -j2 freno >/dev/null
# 500 hosts are reached through 127.0.x.y addresses: the servers must listen
# on the wildcard address for the duration of the benchmark.
bash scripts/topology.sh stop >/dev/null 2>&1 || true
FRENO_TOPOLOGY_BIND="0.0.0.0,::1" bash scripts/topology.sh start >/dev/null

PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash scripts/topology.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

LAG_QUERY="select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check from meta.heartbeat order by ts desc limit 1"

write_config() { # $1 file, $2 clusters json
    cat > "$1" <<JSON
{
  "ListenPort": $FRENO_PORT,
  "RaftDataDir": "$WORK/raft",
  "RaftNodes": [],
  "Stores": { "MySQL": {
      "User": "freno", "Password": "freno",
      "MetricQuery": "$LAG_QUERY",
      "ThrottleThreshold": 1.0,
      "Clusters": $2 } }
}
JSON
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_peak_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

start_freno() { # $1 config; sets FPID and FIRST (ms from spawn to the first 200)
    rm -rf "$WORK/raft"; mkdir -p "$WORK/raft"
    local t0 t1
    t0=$(date +%s%N)
    "$ROOT/build-release/freno" --http --config "$1" --quiet >/dev/null 2>"$WORK/freno.log" &
    FPID=$!
    PIDS+=("$FPID")
    for _ in $(seq 1 500); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FRENO_PORT/check/bench/mysql/main" || true)
        if [ "$code" = 200 ]; then break; fi
        sleep 0.01
    done
    t1=$(date +%s%N)
    FIRST=$(( (t1 - t0) / 1000000 ))
}

stop_freno() { kill "$FPID" 2>/dev/null || true; wait "$FPID" 2>/dev/null || true; }

# ---- 1. three hosts: first 200, idle cost, throughput ----
write_config "$WORK/three.json" '{ "main": { "StaticHostsSettings": { "Hosts": ["127.0.0.1:13306", "127.0.0.1:13307", "127.0.0.1:13308"] } } }'
start_freno "$WORK/three.json"
FIRST_MS=$FIRST
sleep 2
c0=$(cpu_ticks "$FPID"); sleep "$IDLE_SECS"; c1=$(cpu_ticks "$FPID")
IDLE_CPU=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", (b-a)/hz/s*100}')
IDLE_RSS=$(rss_peak_kb "$FPID")

BODY=$(curl -s "http://127.0.0.1:$FRENO_PORT/check/bench/mysql/main")
cat > "$WORK/haproxy.cfg" <<CFG
global
    maxconn 4096
    nbthread 2
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend constant
    bind 127.0.0.1:$HAPROXY_PORT
    http-request return status 200 content-type application/json string '$(printf '%s' "$BODY" | tr -d '\n')'
CFG
haproxy -f "$WORK/haproxy.cfg" -db </dev/null >/dev/null 2>&1 &
HPID=$!; PIDS+=("$HPID")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$HAPROXY_PORT/" && break; sleep 0.05; done

wrk_run() { # $1 url -> "rps p99ms"
    wrk -t2 -c64 -d"${DUR}s" --latency "$1" 2>/dev/null | awk '
        /Requests\/sec/ {rps=$2}
        /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
        END {printf "%s %s\n", rps, p99}'
}

F_RPS_SUM=0; H_RPS_SUM=0; F_P99_MAX=0; F_CPU_US_SUM=0
for r in $(seq 1 "$ROUNDS"); do
    c0=$(cpu_ticks "$FPID")
    read -r frps fp99 < <(wrk_run "http://127.0.0.1:$FRENO_PORT/check/bench/mysql/main")
    c1=$(cpu_ticks "$FPID")
    read -r hrps _hp99 < <(wrk_run "http://127.0.0.1:$HAPROXY_PORT/check/bench/mysql/main")
    cpu_us=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v rps="$frps" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz*1e6/(rps*d)}')
    echo "round $r: freno ${frps} req/s p99 ${fp99} ms cpu ${cpu_us} us/req | haproxy ${hrps} req/s"
    F_RPS_SUM=$(awk -v a="$F_RPS_SUM" -v b="$frps" 'BEGIN{print a+b}')
    H_RPS_SUM=$(awk -v a="$H_RPS_SUM" -v b="$hrps" 'BEGIN{print a+b}')
    F_P99_MAX=$(awk -v a="$F_P99_MAX" -v b="$fp99" 'BEGIN{print (b>a)?b:a}')
    F_CPU_US_SUM=$(awk -v a="$F_CPU_US_SUM" -v b="$cpu_us" 'BEGIN{print a+b}')
done
RATIO=$(awk -v a="$F_RPS_SUM" -v b="$H_RPS_SUM" 'BEGIN{printf "%.2f", a/b}')
F_RPS=$(awk -v a="$F_RPS_SUM" -v n="$ROUNDS" 'BEGIN{printf "%.0f", a/n}')
H_RPS=$(awk -v a="$H_RPS_SUM" -v n="$ROUNDS" 'BEGIN{printf "%.0f", a/n}')
CPU_US=$(awk -v a="$F_CPU_US_SUM" -v n="$ROUNDS" 'BEGIN{printf "%.2f", a/n}')

HEAD_OUT=$(hey -z "${DUR}s" -c 64 -m HEAD "http://127.0.0.1:$FRENO_PORT/check/bench/mysql/main" 2>/dev/null)
HEAD_RPS=$(echo "$HEAD_OUT" | awk '/Requests\/sec/{printf "%.0f", $2}')
HEAD_P99=$(echo "$HEAD_OUT" | awk '/99%% in|99% in/{printf "%.2f", $3*1000}')
LOAD_RSS=$(rss_peak_kb "$FPID")
stop_freno

# ---- 2. 500 hosts in 10 clusters ----
clusters="{"
for c in $(seq 0 9); do
    hosts=""
    for h in $(seq 1 50); do
        port=$(( 13307 + (h % 2) ))
        hosts="$hosts\"127.0.$((c + 1)).$h:$port\","
    done
    clusters="$clusters\"c$c\": {\"StaticHostsSettings\": {\"Hosts\": [${hosts%,}]}},"
done
clusters="${clusters%,}, \"main\": {\"StaticHostsSettings\": {\"Hosts\": [\"127.0.0.1:13307\"]}}}"
write_config "$WORK/many.json" "$clusters"
start_freno "$WORK/many.json"
MANY_FIRST_MS=$FIRST
sleep 5
c0=$(cpu_ticks "$FPID"); sleep "$IDLE_SECS"; c1=$(cpu_ticks "$FPID")
MANY_CPU=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", (b-a)/hz/s*100}')
MANY_RSS=$(rss_peak_kb "$FPID")
PROBES=$(curl -s "http://127.0.0.1:$FRENO_PORT/debug/vars" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("probes.total",0), d.get("probes.error",0))')
stop_freno

cat <<OUT

| measure | freno (C) | target | Go original (same machine) |
|---|---|---|---|
| GET /check keep-alive, wrk -t2 -c64 | ${F_RPS} req/s (HAProxy constant 200: ${H_RPS} req/s, ratio ${RATIO}) | ratio >= 0.8 | 0.35-0.45 |
| GET /check p99 | ${F_P99_MAX} ms | <= 10 ms | 22 ms |
| daemon CPU per GET | ${CPU_US} us | <= 12 us | 35 us |
| HEAD /check, hey -c64 | ${HEAD_RPS} req/s, p99 ${HEAD_P99} ms | | |
| peak RSS under load | $((LOAD_RSS / 1024)) MB | | |
| idle, 3 hosts at 20 Hz: CPU | ${IDLE_CPU} % | <= 1.5 % | 2.8 % |
| idle, 3 hosts at 20 Hz: peak RSS | $((IDLE_RSS / 1024)) MB (${IDLE_RSS} kB) | <= 8 MB | 17 MB |
| 500 hosts in 10 clusters at 20 Hz: CPU | ${MANY_CPU} % of one core | <= 20 % | 61 % |
| 500 hosts: peak RSS | $((MANY_RSS / 1024)) MB | <= 25 MB | 49 MB |
| 500 hosts: probes total / errors | ${PROBES} | | |
| first /check 200 after start | ${FIRST_MS} ms (500 hosts: ${MANY_FIRST_MS} ms) | <= 1000 ms | 10 s |
OUT
