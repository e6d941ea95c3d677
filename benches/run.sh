#!/usr/bin/env bash
# The benchmark scenarios of docs/benchmarks.md: workerman and its peers, run alternately in one
# invocation, then medians and ratios.
#
#   bash benches/run.sh                 # SSE at 1,000 and 10,000 streams, storm, wrk 10 s; 3 reps
#   bash benches/run.sh --quick         # 1,000 streams, wrk 3 s, 1 rep: a smoke run (~2 min)
#   SIZES="1000 10000 50000 100000" COUNT=4 bash benches/run.sh   # once workers fork (see docs)
#
# Environment (all optional):
#   SIZES="1000 10000"   stream counts for the SSE scenarios
#   REPS=3               repetitions of every scenario (medians are reported)
#   WRK_SECS=10          duration of each wrk run; WRK_CONNS=100 connections
#   SSE_SECS=10          measuring window of each SSE run (after ramp and a 3 s warm-up)
#   STORM_SUBS=10000     subscribers of the broadcast storm; STORM_SECS=5
#   COUNT=1              worker processes per server (SO_REUSEPORT); >1 needs the process model
#   PIN_SERVER="taskset -c 0"  PIN_LOAD="taskset -c 1"   CPU pinning (set to "" to disable)
#   ONLY="http sse storm"      which groups to run
#   OUT=target/bench-results/<time>   where CSV, JSON, wrk logs and the SVG go
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000 10000"}
REPS=${REPS:-3}
WRK_SECS=${WRK_SECS:-10}
WRK_CONNS=${WRK_CONNS:-100}
SSE_SECS=${SSE_SECS:-10}
STORM_SUBS=${STORM_SUBS:-10000}
STORM_SECS=${STORM_SECS:-5}
COUNT=${COUNT:-1}
ONLY=${ONLY:-"http sse storm"}
if [[ "${1:-}" == "--quick" ]]; then
    SIZES=${QUICK_SIZES:-1000}
    REPS=1
    WRK_SECS=3
    SSE_SECS=5
    STORM_SUBS=1000
    STORM_SECS=2
fi
PIN_SERVER=${PIN_SERVER-"taskset -c 0"}
PIN_LOAD=${PIN_LOAD-"taskset -c 1"}
OUT=${OUT:-target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
export COUNT  # read by our bench servers (seed_sse, hello_server) from the environment
mkdir -p "$OUT"
HTTP_CSV=$OUT/http.csv
SSE_CSV=$OUT/sse.csv

log() { printf '\n== %s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian's package)"
    if [[ $(id -u) == 0 ]]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
ulimit -n "$(ulimit -Hn)"

log "building (release)"
cargo build --release --example sse_broadcast
# The bench targets' executables, by name, from cargo's own report.
bench_json=$(cargo bench --no-run --message-format=json 2>/dev/null)
exe_of() {
    grep -o "\"executable\":\"[^\"]*/$1-[0-9a-f]*\"" <<<"$bench_json" | head -1 | cut -d'"' -f4
}
LOAD=$(exe_of sse_load)
SEED=$(exe_of seed_sse)
HELLO=$(exe_of hello_server)
BROADCAST=target/release/examples/sse_broadcast
cargo build --release --manifest-path benches/peers/Cargo.toml
PEERS=benches/peers/target/release
for f in "$LOAD" "$SEED" "$HELLO" "$BROADCAST" "$PEERS/mio_http" "$PEERS/mio_sse" \
    "$PEERS/hyper_hello" "$PEERS/axum_sse"; do
    [[ -x $f ]] || { echo "missing executable: $f" >&2; exit 1; }
done

# --- servers ----------------------------------------------------------------------------------
SERVER_PID=
start_server() { # port command...
    local port=$1
    shift
    if ss -ltn "sport = :$port" | grep -q LISTEN; then
        echo "port $port is already in use; stop what listens there first" >&2
        exit 1
    fi
    # shellcheck disable=SC2086
    $PIN_SERVER "$@" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        ss -ltn "sport = :$port" | grep -q LISTEN && return 0
        sleep 0.05
    done
    echo "server on port $port did not start: $*" >&2
    cat "$OUT/server.log" >&2
    exit 1
}
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
    # Let TIME_WAIT and the listen port settle.
    sleep 1
}
trap stop_server EXIT

# name port command... — for HTTP
http_server() {
    case $1 in
    workerman) PORT=18081 start_server 18081 "$HELLO" start ;;
    mio_http) start_server 18181 "$PEERS/mio_http" --port 18181 --count "$COUNT" ;;
    hyper) start_server 18182 "$PEERS/hyper_hello" --port 18182 --count "$COUNT" ;;
    esac
}
http_port() { case $1 in workerman) echo 18081 ;; mio_http) echo 18181 ;; hyper) echo 18182 ;; esac; }

# --- HTTP: wrk --------------------------------------------------------------------------------
if [[ " $ONLY " == *" http "* ]]; then
    echo "variant,server,rep,requests_per_s,requests,secs,cpu_ns,server_cpu_util,cpu_per_req_ns,loadavg_1m" >"$HTTP_CSV"
    for rep in $(seq "$REPS"); do
        for variant in keepalive keepalive_4096paths pipeline16 pipeline16_4096paths; do
            case $variant in
            keepalive) script=() ;;
            keepalive_4096paths) script=(-s benches/wrk/paths.lua) ;;
            pipeline16) script=(-s benches/wrk/pipeline.lua) ;;
            pipeline16_4096paths) script=(-s benches/wrk/pipeline_paths.lua) ;;
            esac
            for server in workerman mio_http hyper; do
                log "http $variant $server rep $rep"
                http_server "$server"
                port=$(http_port "$server")
                cpu0=$("$LOAD" cpu "$SERVER_PID")
                # shellcheck disable=SC2086
                $PIN_LOAD wrk -t1 -c"$WRK_CONNS" -d"${WRK_SECS}s" "${script[@]}" \
                    "http://127.0.0.1:$port/" >"$OUT/wrk-$variant-$server-$rep.txt"
                cpu1=$("$LOAD" cpu "$SERVER_PID")
                stop_server
                read -r requests secs < <(awk '/requests in/ {
                    r=$1; s=$4; sub(/,$/,"",s); unit=s; gsub(/[0-9.]/,"",unit); v=s+0;
                    if (unit=="ms") v/=1000; if (unit=="m") v*=60; print r, v }' \
                    "$OUT/wrk-$variant-$server-$rep.txt")
                rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$variant-$server-$rep.txt")
                errors=$(grep -E 'Socket errors|Non-2xx' "$OUT/wrk-$variant-$server-$rep.txt" || true)
                [[ -n $errors ]] && echo "  $errors" >&2
                awk -v v="$variant" -v s="$server" -v rep="$rep" -v rps="$rps" -v n="$requests" \
                    -v secs="$secs" -v c="$((cpu1 - cpu0))" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
                    'BEGIN { printf "%s,%s,%s,%.0f,%.0f,%.2f,%.0f,%.3f,%.1f,%s\n", v, s, rep, rps, n,
                        secs, c, c / 1e9 / secs, c / n, load }' | tee -a "$HTTP_CSV" >&2
            done
        done
    done
fi

# --- SSE: the generator -----------------------------------------------------------------------
sse_run() { # scenario server streams rep url [generator args...]
    local scenario=$1 server=$2 streams=$3 rep=$4 url=$5
    shift 5
    log "sse $scenario $server $streams streams rep $rep"
    # shellcheck disable=SC2086
    $PIN_LOAD "$LOAD" run --url "$url" --streams "$streams" --server-pid "$SERVER_PID" \
        --scenario "$scenario" --server "$server" --rep "$rep" --duration "$SSE_SECS" \
        --csv "$SSE_CSV" --json "$OUT/sse.jsonl" "$@" | tee -a "$OUT/sse-runs.txt" >&2
}

if [[ " $ONLY " == *" sse "* ]]; then
    for streams in $SIZES; do
        for rep in $(seq "$REPS"); do
            # The seed's pattern: one 2 s timer per stream.
            PORT=18080 INTERVAL=2 start_server 18080 "$SEED" start
            sse_run seed workerman "$streams" "$rep" http://127.0.0.1:18080/
            stop_server
            start_server 18190 "$PEERS/mio_sse" --port 18190 --interval 2 --mode wheel --count "$COUNT"
            sse_run seed mio_floor "$streams" "$rep" http://127.0.0.1:18190/
            stop_server
            start_server 18191 "$PEERS/axum_sse" --port 18191 --interval 2 --count "$COUNT"
            sse_run seed axum "$streams" "$rep" http://127.0.0.1:18191/
            stop_server
            # examples/sse_broadcast.rs: one global 1 s timer, and five publishes timed for fan-out.
            # One process (COUNT=1): a publish reaches only the process that received it.
            COUNT=1 start_server 8090 "$BROADCAST"
            sse_run broadcast workerman "$streams" "$rep" http://127.0.0.1:8090/events \
                --publish-url http://127.0.0.1:8090/publish --publishes 5
            stop_server
            start_server 18192 "$PEERS/mio_sse" --port 18192 --interval 1 --mode global --count "$COUNT"
            sse_run broadcast mio_floor "$streams" "$rep" http://127.0.0.1:18192/ \
                --publish-url http://127.0.0.1:18192/publish --publishes 5
            stop_server
        done
    done
fi

if [[ " $ONLY " == *" storm "* ]]; then
    for rep in $(seq "$REPS"); do
        # Publish back to back for STORM_SECS to STORM_SUBS subscribers (one process, as above).
        COUNT=1 start_server 8090 "$BROADCAST"
        sse_run storm workerman "$STORM_SUBS" "$rep" http://127.0.0.1:8090/events \
            --publish-url http://127.0.0.1:8090/publish --storm "$STORM_SECS" --duration 0
        stop_server
        start_server 18192 "$PEERS/mio_sse" --port 18192 --interval 1 --mode global --count "$COUNT"
        sse_run storm mio_floor "$STORM_SUBS" "$rep" http://127.0.0.1:18192/ \
            --publish-url http://127.0.0.1:18192/publish --storm "$STORM_SECS" --duration 0
        stop_server
    done
fi

# --- report -----------------------------------------------------------------------------------
args=()
[[ -s $HTTP_CSV ]] && args+=(--http "$HTTP_CSV")
[[ -s $SSE_CSV ]] && args+=(--sse "$SSE_CSV")
"$LOAD" summary "${args[@]}" | tee "$OUT/summary.md"
if [[ -s $SSE_CSV ]]; then
    grep -v '^storm,' "$SSE_CSV" >"$OUT/sse-plot.csv"
    "$LOAD" plot --csv "$OUT/sse-plot.csv" --out "$OUT/sse.svg"
fi
echo "results in $OUT" >&2
