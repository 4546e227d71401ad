#!/usr/bin/env bash
# Benchmark (not a test): GET /check with keep-alive and with a connection per
# request (Connection: close) against HAProxy answering a constant 200 with
# the same body, daemon CPU per request, HEAD, idle cost with 3 probed hosts,
# cost with 500 probed hosts, and time to the first 200. Every figure is the
# median of ROUNDS runs (3; 1 with --quick). Prints a table and one summary
# line per figure with its target and PASS or FAIL, then runs
# bench/probes.sh when it exists.
#
# Usage: bench/run.sh [--quick]   (needs the demo topology; starts it)
#   GO_FRENO_BIN=/path/to/freno   also measures the Go original, same run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
DUR=10; ROUNDS=3; IDLE_SECS=10
if [ "$QUICK" = 1 ]; then DUR=4; ROUNDS=1; IDLE_SECS=10; fi
WORK=${BENCH_DIR:-/tmp/freno-bench}
FRENO_PORT=18901
HAPROXY_PORT=18902
GO_PORT=18903
GO_BIN=${GO_FRENO_BIN:-}
if [ -n "$GO_BIN" ] && [ ! -x "$GO_BIN" ]; then
    echo "bench: GO_FRENO_BIN=$GO_BIN is not an executable file" >&2
    exit 2
fi
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
CHECK=/check/bench/mysql/main

write_config() { # $1 file, $2 port, $3 raft dir, $4 clusters json
    cat > "$1" <<JSON
{
  "ListenPort": $2,
  "RaftDataDir": "$3",
  "RaftNodes": [],
  "Stores": { "MySQL": {
      "User": "freno", "Password": "freno",
      "MetricQuery": "$LAG_QUERY",
      "ThrottleThreshold": 1.0,
      "Clusters": $4 } }
}
JSON
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_peak_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

median() { # numbers as arguments -> their median ("" when none)
    printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{v[NR]=$1} END{if (NR == 0) exit; if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# start_daemon NAME BIN CONFIG PORT: sets DPID and FIRST (ms from spawn to
# the first 200; the Go original needs about 10 s, so wait up to 60 s).
start_daemon() {
    local name=$1 bin=$2 config=$3 port=$4 t0 t1 code=000
    local raft
    raft=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["RaftDataDir"])' "$config")
    rm -rf "$raft"; mkdir -p "$raft"
    t0=$(date +%s%N)
    if [ "$name" = freno ]; then
        "$bin" --http --config "$config" --quiet >/dev/null 2>"$WORK/$name.log" &
    else
        "$bin" --http --config "$config" >"$WORK/$name.log" 2>&1 &
    fi
    DPID=$!
    PIDS+=("$DPID")
    local deadline=$(( t0 + 60000000000 ))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$CHECK" || true)
        [ "$code" = 200 ] && break
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.01
    done
    t1=$(date +%s%N)
    if [ "$code" != 200 ]; then
        echo "bench: $name did not answer 200 on $CHECK (last status $code); its log:" >&2
        tail -5 "$WORK/$name.log" >&2
        exit 1
    fi
    FIRST=$(( (t1 - t0) / 1000000 ))
}

stop_daemon() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# idle_cpu PID: median over ROUNDS windows of IDLE_SECS, % of one core
idle_cpu() {
    local vals=() c0 c1
    for _ in $(seq 1 "$ROUNDS"); do
        c0=$(cpu_ticks "$1"); sleep "$IDLE_SECS"; c1=$(cpu_ticks "$1")
        vals+=("$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", (b-a)/hz/s*100}')")
    done
    median "${vals[@]}"
}

# wrk_measure PID URL CONNECTIONS [wrk options]: "req/s p99-ms cpu-us-per-request"
wrk_measure() {
    local pid=$1 url=$2 conns=$3 c0 c1 out
    shift 3
    c0=$(cpu_ticks "$pid")
    out=$(wrk -t2 -c"$conns" -d"${DUR}s" --latency "$@" "$url" 2>/dev/null || true)
    c1=$(cpu_ticks "$pid")
    echo "$out" | awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v d="$DUR" '
        /Requests\/sec/ {rps=$2}
        /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
        END {if (rps == "" || rps == 0) {print "0 0 0"; exit}
             printf "%.0f %s %.2f\n", rps, p99, (b-a)/hz*1e6/(rps*d)}'
}

# ---- 1. three hosts: first 200, idle cost ----
THREE='{ "main": { "StaticHostsSettings": { "Hosts": ["127.0.0.1:13306", "127.0.0.1:13307", "127.0.0.1:13308"] } } }'
write_config "$WORK/three.json" "$FRENO_PORT" "$WORK/raft" "$THREE"
start_daemon freno "$ROOT/build-release/freno" "$WORK/three.json" "$FRENO_PORT"
FPID=$DPID; FIRST_MS=$FIRST
sleep 2
IDLE_CPU=$(idle_cpu "$FPID")
IDLE_RSS=$(rss_peak_kb "$FPID")

GPID=
G_FIRST_MS=-; G_IDLE_CPU=-; G_IDLE_RSS=
if [ -n "$GO_BIN" ]; then
    write_config "$WORK/go-three.json" "$GO_PORT" "$WORK/go-raft" "$THREE"
    start_daemon go "$GO_BIN" "$WORK/go-three.json" "$GO_PORT"
    GPID=$DPID; G_FIRST_MS=$FIRST
    sleep 2
    G_IDLE_CPU=$(idle_cpu "$GPID")
    G_IDLE_RSS=$(rss_peak_kb "$GPID")
fi

# ---- 2. GET /check: keep-alive and Connection: close, against HAProxy ----
BODY=$(curl -s "http://127.0.0.1:$FRENO_PORT$CHECK")
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

# Warm-up, not measured: each server serves the load once for 2 s before the
# rounds, so that no round pays a server's first requests (its threads' heap
# arenas, first-touched buffers), which the server measured first would
# otherwise pay alone.
for srv in freno haproxy go; do
    case $srv in
    freno) port=$FRENO_PORT ;;
    haproxy) port=$HAPROXY_PORT ;;
    go) [ -n "$GPID" ] || continue; port=$GO_PORT ;;
    esac
    wrk -t2 -c64 -d2s "http://127.0.0.1:$port$CHECK" >/dev/null 2>&1 || true
    wrk -t2 -c16 -d1s -H "Connection: close" "http://127.0.0.1:$port$CHECK" >/dev/null 2>&1 || true
done

# Per round and mode, each server in turn under the same load; a client
# that sends "Connection: close" makes every server close after its answer.
declare -A RPS P99 CPU
for r in $(seq 1 "$ROUNDS"); do
    for mode in keep close; do
        if [ "$mode" = keep ]; then conns=64; opts=(); else conns=16; opts=(-H "Connection: close"); fi
        for srv in freno haproxy go; do
            case $srv in
            freno) pid=$FPID; port=$FRENO_PORT ;;
            haproxy) pid=$HPID; port=$HAPROXY_PORT ;;
            go) [ -n "$GPID" ] || continue; pid=$GPID; port=$GO_PORT ;;
            esac
            read -r rps p99 cpu < <(wrk_measure "$pid" "http://127.0.0.1:$port$CHECK" "$conns" "${opts[@]}")
            RPS[$srv,$mode]="${RPS[$srv,$mode]:-} $rps"
            P99[$srv,$mode]="${P99[$srv,$mode]:-} $p99"
            CPU[$srv,$mode]="${CPU[$srv,$mode]:-} $cpu"
            echo "round $r $mode $srv: $rps req/s, p99 $p99 ms, $cpu us CPU per request"
        done
    done
done
# ratios per round (the same moment's load for both), then their median
ratios() { # $1 list a, $2 list b -> median of a[i]/b[i]
    local -a a b vals=()
    read -r -a a <<<"$1"; read -r -a b <<<"$2"
    for i in "${!a[@]}"; do
        vals+=("$(awk -v x="${a[$i]}" -v y="${b[$i]:-0}" 'BEGIN{if (y > 0) printf "%.3f", x/y}')")
    done
    median "${vals[@]}"
}
med() { # $1 space-separated list
    local -a v
    read -r -a v <<<"$1"
    median "${v[@]}"
}
declare -A M
for srv in freno haproxy go; do
    for mode in keep close; do
        [ -n "${RPS[$srv,$mode]:-}" ] || continue
        M[$srv,$mode,rps]=$(med "${RPS[$srv,$mode]}")
        M[$srv,$mode,p99]=$(med "${P99[$srv,$mode]}")
        M[$srv,$mode,cpu]=$(med "${CPU[$srv,$mode]}")
        M[$srv,$mode,rps_x]=$(ratios "${RPS[$srv,$mode]}" "${RPS[haproxy,$mode]}")
        M[$srv,$mode,cpu_x]=$(ratios "${CPU[$srv,$mode]}" "${CPU[haproxy,$mode]}")
    done
done
g() { echo "${M[$1]:--}"; }

HEAD_OUT=$(hey -z "${DUR}s" -c 64 -m HEAD "http://127.0.0.1:$FRENO_PORT$CHECK" 2>/dev/null || true)
HEAD_RPS=$(echo "$HEAD_OUT" | awk '/Requests\/sec/{printf "%.0f", $2}')
HEAD_P99=$(echo "$HEAD_OUT" | awk '/99%% in|99% in/{printf "%.2f", $3*1000}')
LOAD_RSS=$(rss_peak_kb "$FPID")
stop_daemon "$FPID"
[ -n "$GPID" ] && stop_daemon "$GPID"
stop_daemon "$HPID"

# ---- 3. 500 hosts in 10 clusters ----
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

many() { # NAME BIN PORT RAFT: sets MANY_FIRST MANY_CPU MANY_RSS
    write_config "$WORK/$1-many.json" "$3" "$4" "$clusters"
    start_daemon "$1" "$2" "$WORK/$1-many.json" "$3"
    MANY_FIRST=$FIRST
    sleep 5
    MANY_CPU=$(idle_cpu "$DPID")
    MANY_RSS=$(rss_peak_kb "$DPID")
    stop_daemon "$DPID"
}
many freno "$ROOT/build-release/freno" "$FRENO_PORT" "$WORK/raft"
MANY_FIRST_MS=$MANY_FIRST; MANY_CPU_F=$MANY_CPU; MANY_RSS_F=$MANY_RSS
G_MANY_FIRST_MS=-; G_MANY_CPU=-; G_MANY_RSS=
if [ -n "$GO_BIN" ]; then
    many go "$GO_BIN" "$GO_PORT" "$WORK/go-raft"
    G_MANY_FIRST_MS=$MANY_FIRST; G_MANY_CPU=$MANY_CPU; G_MANY_RSS=$MANY_RSS
fi

mb() { [ -n "$1" ] && awk -v k="$1" 'BEGIN{printf "%.1f MB", k/1024}' || echo -; }
GO_NOTE="(not measured: set GO_FRENO_BIN)"
[ -n "$GO_BIN" ] && GO_NOTE="(this run)"

cat <<OUT

Medians of $ROUNDS run(s), wrk -t2 for ${DUR} s each; HAProxy answers a constant 200 with the same body.

| measure | freno (C) | HAProxy constant | Go original $GO_NOTE |
|---|---|---|---|
| GET /check keep-alive, wrk -c64: req/s | $(g freno,keep,rps) (x$(g freno,keep,rps_x) HAProxy) | $(g haproxy,keep,rps) | $(g go,keep,rps) (x$(g go,keep,rps_x)) |
| keep-alive: p99 | $(g freno,keep,p99) ms | $(g haproxy,keep,p99) ms | $(g go,keep,p99) ms |
| keep-alive: CPU per request | $(g freno,keep,cpu) us | $(g haproxy,keep,cpu) us | $(g go,keep,cpu) us |
| GET /check Connection: close, wrk -c16: req/s | $(g freno,close,rps) (x$(g freno,close,rps_x) HAProxy) | $(g haproxy,close,rps) | $(g go,close,rps) (x$(g go,close,rps_x)) |
| Connection: close: p99 | $(g freno,close,p99) ms | $(g haproxy,close,p99) ms | $(g go,close,p99) ms |
| Connection: close: CPU per request | $(g freno,close,cpu) us (x$(g freno,close,cpu_x) HAProxy) | $(g haproxy,close,cpu) us | $(g go,close,cpu) us (x$(g go,close,cpu_x)) |
| HEAD /check, hey -c64 | ${HEAD_RPS:-0} req/s, p99 ${HEAD_P99:--} ms | | |
| peak RSS under load | $(mb "$LOAD_RSS") | | |
| idle, 3 hosts at 20 Hz: CPU | ${IDLE_CPU} % | | ${G_IDLE_CPU} % |
| idle, 3 hosts: peak RSS | $(mb "$IDLE_RSS") | | $(mb "$G_IDLE_RSS") |
| 500 hosts in 10 clusters at 20 Hz: CPU | ${MANY_CPU_F} % of one core | | ${G_MANY_CPU} % |
| 500 hosts: peak RSS | $(mb "$MANY_RSS_F") | | $(mb "$G_MANY_RSS") |
| first /check 200 after start, 3 hosts | ${FIRST_MS} ms | | ${G_FIRST_MS} ms |
| first /check 200 after start, 500 hosts | ${MANY_FIRST_MS} ms | | ${G_MANY_FIRST_MS} ms |

OUT

FAILS=0
check() { # label value op target unit
    local verdict
    verdict=$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN{
        if (v == "" || v == "-") {print "FAIL"; exit}
        ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "PASS" : "FAIL"}')
    [ "$verdict" = PASS ] || FAILS=$((FAILS + 1))
    printf 'summary: %-52s %10s %-4s (target %s %s%s) %s\n' "$1" "$2" "$5" "$3" "$4" "$5" "$verdict"
}
check "keep-alive req/s, ratio to HAProxy" "$(g freno,keep,rps_x)" ">=" 0.95 x
check "keep-alive CPU per request" "$(g freno,keep,cpu)" "<=" 12 us
check "keep-alive p99" "$(g freno,keep,p99)" "<=" 10 ms
check "Connection: close req/s, ratio to HAProxy" "$(g freno,close,rps_x)" ">=" 0.9 x
check "Connection: close CPU per request, ratio to HAProxy" "$(g freno,close,cpu_x)" "<=" 1.2 x
check "idle CPU, 3 hosts at 20 Hz" "$IDLE_CPU" "<=" 1.5 %
check "idle peak RSS, 3 hosts" "$(awk -v k="$IDLE_RSS" 'BEGIN{printf "%.1f", k/1024}')" "<=" 10 MB
# 500 hosts at 20 Hz are 10,000 probes a second: the probing target of
# 25 us per probe (bench/probes.sh) is 25 % of one core.
check "500 hosts CPU" "$MANY_CPU_F" "<=" 25 %
check "500 hosts peak RSS" "$(awk -v k="$MANY_RSS_F" 'BEGIN{printf "%.1f", k/1024}')" "<=" 20 MB
check "first 200 after start, 3 hosts" "$FIRST_MS" "<=" 1000 ms
check "first 200 after start, 500 hosts" "$MANY_FIRST_MS" "<=" 1000 ms
echo "summary: $FAILS figure(s) miss their target"

if [ -f bench/probes.sh ]; then
    trap - EXIT
    cleanup
    if [ "$QUICK" = 1 ]; then bash bench/probes.sh --quick; else bash bench/probes.sh; fi
fi
