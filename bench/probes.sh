#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark (not a test): what probing costs. For 100, 500, 1,000 and 2,000
# hosts probed at 20 Hz (127.0.x.y addresses reaching the two replicas): CPU
# per probe, syscalls per probe (perf counting raw_syscalls:sys_enter over
# every thread) and the probe rate; RSS idle (3 hosts) and at 500 hosts.
# Probes are counted by the servers (Questions), so the Go original, run
# beside ours when GO_FRENO_BIN names its binary, is measured the same way.
# Medians of 3 runs (1 with --quick); one summary line per figure.
# Usage: bench/probes.sh [--quick]   (starts the topology unless it already
# listens on the wildcard address, and then stops it again). PROBES_HOSTS
# overrides the host counts, PROBES_FRENO_BIN the daemon measured. Exits 0
# once everything was measured; the verdicts are in the SUMMARY lines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
ROUNDS=3; WARM_SECS=6; CPU_SECS=10; SYS_SECS=5; IDLE_SECS=10
if [ "$QUICK" = 1 ]; then ROUNDS=1; WARM_SECS=4; CPU_SECS=4; SYS_SECS=3; IDLE_SECS=5; fi
HOST_COUNTS=${PROBES_HOSTS:-"100 500 1000 2000"}
WORK=${BENCH_DIR:-/tmp/freno-bench}/probes
TOPO=${FRENO_TOPOLOGY_DIR:-/tmp/freno-topology}
PORT=18903
REPLICAS=(13307 13308)
# Targets (issue: probes at scale, memory per host).
T_CPU_US=25; T_SYSCALLS=3.5; T_RSS500_MB=20; T_IDLE_MB=10
mkdir -p "$WORK"

command -v perf >/dev/null || { echo "probes: perf is required" >&2; exit 1; }
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSANITIZE= >/dev/null
make -C build-release -j2 freno >/dev/null

sql() { # $1 port, $2 statement: as root over the node's socket
    mariadb --no-defaults --socket="$TOPO/n$1/mariadbd.sock" -uroot --batch --skip-column-names \
        --connect-timeout=2 -e "$2"
}
# The hosts are 127.0.x.y: the replicas must listen on the wildcard address.
# A topology already running on loopback only (bench/run.sh's) is restarted
# wider, and restarted as it was at the end.
ping_replica() { # $1 address
    mariadb-admin --no-defaults -h"$1" -P"${REPLICAS[0]}" -ufreno -pfreno --connect-timeout=1 ping \
        >/dev/null 2>&1
}
TOPOLOGY_WAS_UP=0
ping_replica 127.0.0.1 && TOPOLOGY_WAS_UP=1
STARTED_TOPOLOGY=0
if ! ping_replica 127.0.1.1; then
    bash scripts/topology.sh stop >/dev/null 2>&1 || true
    FRENO_TOPOLOGY_BIND="0.0.0.0,::1" bash scripts/topology.sh start >/dev/null
    STARTED_TOPOLOGY=1
fi
DPID=""
cleanup() {
    if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
    if [ "$STARTED_TOPOLOGY" = 1 ]; then
        bash scripts/topology.sh stop >/dev/null 2>&1 || true
        if [ "$TOPOLOGY_WAS_UP" = 1 ]; then
            bash scripts/topology.sh start >/dev/null 2>&1 || true
        fi
    fi
    return 0
}
trap cleanup EXIT

LAG_QUERY="select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check from meta.heartbeat order by ts desc limit 1"
HZ=$(getconf CLK_TCK)

write_config() { # $1 file, $2 number of hosts (0: three hosts, one per server)
    local clusters="" hosts="" i
    if [ "$2" = 0 ]; then
        clusters='"main": {"StaticHostsSettings": {"Hosts": ["127.0.0.1:13306", "127.0.0.1:13307", "127.0.0.1:13308"]}}'
    else
        for ((i = 0; i < $2; i++)); do
            hosts="$hosts\"127.0.$((i / 250 + 1)).$((i % 250 + 1)):${REPLICAS[$((i % 2))]}\","
            if (((i + 1) % 50 == 0 || i + 1 == $2)); then
                clusters="$clusters\"c$((i / 50))\": {\"StaticHostsSettings\": {\"Hosts\": [${hosts%,}]}},"
                hosts=""
            fi
        done
        clusters=${clusters%,}
    fi
    cat >"$1" <<JSON
{
  "ListenPort": $PORT,
  "RaftDataDir": "$WORK/raft",
  "RaftNodes": [],
  "Stores": { "MySQL": {
      "User": "freno", "Password": "freno",
      "MetricQuery": "$LAG_QUERY",
      "ThrottleThreshold": 1.0,
      "Clusters": { $clusters } } }
}
JSON
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
# Statements both replicas have seen so far. Between two samples, the later
# sample's own SHOW counts once per replica: probes = difference - NSHOW.
NSHOW=${#REPLICAS[@]}
questions() {
    local n=0 p q
    for p in "${REPLICAS[@]}"; do
        q=$(sql "$p" "show global status like 'Questions'" | cut -f2)
        n=$((n + q))
    done
    echo "$n"
}

start_daemon() { # $1 binary, $2 config
    rm -rf "$WORK/raft"; mkdir -p "$WORK/raft"
    "$1" --http --config "$2" >/dev/null 2>"$WORK/daemon.log" &
    DPID=$!
}
# Waits until the servers see probes (the Go original loads its inventory only
# 10 s after start), then lets every connection open.
wait_probing() {
    local q0 q1 deadline=$((SECONDS + 40))
    q0=$(questions)
    while [ "$SECONDS" -lt "$deadline" ]; do
        sleep 1
        q1=$(questions)
        [ "$((q1 - q0 - NSHOW))" -gt 10 ] && break
        q0=$q1
    done
    sleep "$WARM_SECS"
}
stop_daemon() {
    kill "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
    DPID=""
}

# One run at $2 hosts with binary $1: prints "cpu_us_per_probe syscalls_per_probe
# probes_per_s cpu_pct rss_peak_kb rss_now_kb".
measure() {
    local bin=$1 n=$2 q0 q1 c0 c1 s0 s1 calls
    write_config "$WORK/hosts.json" "$n"
    start_daemon "$bin" "$WORK/hosts.json"
    wait_probing
    q0=$(questions); c0=$(cpu_ticks "$DPID")
    sleep "$CPU_SECS"
    c1=$(cpu_ticks "$DPID"); q1=$(questions)
    s0=$(questions)
    calls=$(perf stat -x, -e raw_syscalls:sys_enter -p "$DPID" -- sleep "$SYS_SECS" 2>&1 |
        awk -F, '/raw_syscalls:sys_enter/{print $1}')
    s1=$(questions)
    echo "$c0 $c1 $q0 $q1 $calls $s0 $s1 $(status_kb "$DPID" VmHWM) $(status_kb "$DPID" VmRSS)" |
        awk -v hz="$HZ" -v cs="$CPU_SECS" -v ns="$NSHOW" '{
            cpu = ($2 - $1) / hz; probes = $4 - $3 - ns; sprobes = $7 - $6 - ns
            printf "%.1f %.2f %.0f %.1f %d %d\n", cpu * 1e6 / probes, $5 / sprobes, probes / cs,
                cpu / cs * 100, $8, $9 }'
    stop_daemon
}

idle_rss() { # $1 binary: prints the peak RSS in kB with 3 hosts
    write_config "$WORK/idle.json" 0
    start_daemon "$1" "$WORK/idle.json"
    wait_probing
    sleep "$IDLE_SECS"
    status_kb "$DPID" VmHWM
    stop_daemon
}

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A R # R[impl,n,field] = median
run_impl() { # $1 label, $2 binary
    local n r field
    for n in $HOST_COUNTS; do
        for p in "${REPLICAS[@]}"; do sql "$p" "set global max_connections = $((n + 200))"; done
        : >"$WORK/runs"
        for r in $(seq 1 "$ROUNDS"); do
            measure "$2" "$n" | tee -a "$WORK/runs" |
                awk -v l="$1" -v n="$n" -v r="$r" '{printf "%s %5d hosts, run %d: %6.1f us/probe, %5.2f syscalls/probe, %6.0f probes/s, %5.1f %% CPU, RSS peak %d kB\n", l, n, r, $1, $2, $3, $4, $5}'
        done
        for field in 1 2 3 4 5; do
            R[$1,$n,$field]=$(awk -v f="$field" '{print $f}' "$WORK/runs" | median)
        done
    done
    : >"$WORK/runs"
    for r in $(seq 1 "$ROUNDS"); do idle_rss "$2" >>"$WORK/runs"; done
    R[$1,idle]=$(median <"$WORK/runs")
    echo "$1 idle (3 hosts): RSS peak $(tr '\n' ' ' <"$WORK/runs")kB"
}

run_impl freno "${PROBES_FRENO_BIN:-$ROOT/build-release/freno}"
GO=""
if [ -n "${GO_FRENO_BIN:-}" ]; then
    run_impl go "$GO_FRENO_BIN"
    GO=1
fi

verdict() { awk -v v="$1" -v t="$2" 'BEGIN{print (v != "" && v <= t) ? "PASS" : "FAIL"}'; }
go_col() { [ -n "$GO" ] && printf ' | Go original: %s' "$1"; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f MB", k / 1024}'; }

echo
echo "probes: curve (medians of $ROUNDS; CPU per probe, syscalls per probe, probes/s, CPU of one core, RSS peak)"
for n in $HOST_COUNTS; do
    line=$(printf '%5d hosts: %5.1f us, %5.2f syscalls, %6.0f probes/s, %5.1f %%, %s' "$n" \
        "${R[freno,$n,1]}" "${R[freno,$n,2]}" "${R[freno,$n,3]}" "${R[freno,$n,4]}" "$(mb "${R[freno,$n,5]}")")
    [ -n "$GO" ] && line="$line$(printf ' | Go original: %5.1f us, %5.2f syscalls, %6.0f probes/s, %5.1f %%, %s' \
        "${R[go,$n,1]}" "${R[go,$n,2]}" "${R[go,$n,3]}" "${R[go,$n,4]}" "$(mb "${R[go,$n,5]}")")"
    echo "  $line"
done
echo
# The CPU target holds from 500 hosts up. Below, the daemon's fixed work
# (timers, publishing, the dashboard's history: about 1 % of a core) is
# shared by fewer probes; that point is shown for the curve, without a verdict.
for n in $HOST_COUNTS; do
    v=${R[freno,$n,1]}
    if [ "$n" -lt 500 ]; then
        echo "SUMMARY probes: CPU per probe at $n hosts: $v us (curve only: targets from 500 hosts)$(go_col "${R[go,$n,1]:-} us")"
        continue
    fi
    echo "SUMMARY probes: CPU per probe at $n hosts: $v us (target <= $T_CPU_US us) $(verdict "$v" "$T_CPU_US")$(go_col "${R[go,$n,1]:-} us")"
done
for n in $HOST_COUNTS; do
    v=${R[freno,$n,2]}
    echo "SUMMARY probes: syscalls per probe at $n hosts: $v (target <= $T_SYSCALLS) $(verdict "$v" "$T_SYSCALLS")$(go_col "${R[go,$n,2]:-}")"
done
# The same cost per probe at the largest count as at 500 hosts (within 20 %).
last=${HOST_COUNTS##* }
case " $HOST_COUNTS " in *" 500 "*)
    if [ "$last" != 500 ]; then
        v=$(awk -v a="${R[freno,$last,1]}" -v b="${R[freno,500,1]}" 'BEGIN{printf "%.2f", a / b}')
        g=""
        [ -n "$GO" ] && g=$(awk -v a="${R[go,$last,1]}" -v b="${R[go,500,1]}" 'BEGIN{printf "%.2f", a / b}')
        echo "SUMMARY probes: CPU per probe at $last hosts / at 500 hosts: $v (target <= 1.2) $(verdict "$v" 1.2)$(go_col "$g")"
    fi
    ;;
esac
case " $HOST_COUNTS " in *" 500 "*)
    v=$(awk -v k="${R[freno,500,5]}" 'BEGIN{printf "%.1f", k / 1024}')
    echo "SUMMARY probes: RSS peak at 500 hosts: $v MB (target <= $T_RSS500_MB MB) $(verdict "$v" "$T_RSS500_MB")$(go_col "$(mb "${R[go,500,5]:-0}")")"
    ;;
esac
v=$(awk -v k="${R[freno,idle]}" 'BEGIN{printf "%.1f", k / 1024}')
echo "SUMMARY probes: RSS peak idle (3 hosts): $v MB (target <= $T_IDLE_MB MB) $(verdict "$v" "$T_IDLE_MB")$(go_col "$(mb "${R[go,idle]:-0}")")"
