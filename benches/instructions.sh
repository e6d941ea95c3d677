#!/usr/bin/env bash
# User-space instructions per HTTP request, counted by valgrind's callgrind: a figure that does
# not move when other programs load the machine (wall-clock throughput here does). Each server
# runs under callgrind twice: once answering nothing (start-up and shut-down), once under
# `wrk -t1 -c$CONNS -d${SECS}s`; (total − idle total) ÷ responses = instructions per request.
# Kernel work (syscalls, loopback) is not counted: see the CPU-time figures of run.sh for that.
#
#   bash benches/instructions.sh            # after benches/run.sh has built everything
#   SECS=5 CONNS=50 VARIANTS="keepalive pipeline16" bash benches/instructions.sh
#   SERVERS=workerman bash benches/instructions.sh     # only ours (default: workerman mio_http hyper)
#   HELLO=/other/checkout/target/release/deps/hello_server-<hash> SERVERS=workerman \
#       bash benches/instructions.sh                   # another build of ours (e.g. main's)
#   METRICS=127.0.0.1:18290 SERVERS=workerman bash benches/instructions.sh   # metrics endpoint on
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
CONNS=${CONNS:-50}
VARIANTS=${VARIANTS:-"keepalive keepalive_4096paths pipeline16 pipeline16_4096paths"}
OUT=${OUT:-target/bench-results/instructions-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

if [[ -z ${HELLO:-} ]]; then
    bench_json=$(cargo bench --no-run --message-format=json 2>/dev/null)
    HELLO=$(grep -o '"executable":"[^"]*/hello_server-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)
fi
# The peers are built only when they are measured.
if [[ " ${SERVERS:-workerman mio_http hyper} " =~ \ (mio_http|hyper)\  ]]; then
    cargo build --release --manifest-path benches/peers/Cargo.toml
fi
PEERS=benches/peers/target/release
# PORT=18381: ours on another port (when another run may hold 18281).
export PORT=${PORT:-18281} COUNT=1 # our hello_server's settings; the peers get --port

# server name -> command (port $PORT, 18282, 18283)
server_cmd() {
    case $1 in
    workerman) echo "$HELLO start" ;; # PORT and COUNT from the environment
    mio_http) echo "$PEERS/mio_http --port 18282" ;;
    hyper) echo "$PEERS/hyper_hello --port 18283" ;;
    esac
}
server_port() { case $1 in workerman) echo "$PORT" ;; mio_http) echo 18282 ;; hyper) echo 18283 ;; esac; }

# Runs one server under callgrind; with a wrk script name, loads it. Prints the total
# instructions (summed over the server's processes) and the responses wrk counted.
measure() { # server variant|idle
    local server=$1 variant=$2 port dir pid responses=0
    port=$(server_port "$server")
    dir=$OUT/$server-$variant
    mkdir -p "$dir"
    # shellcheck disable=SC2046
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p" \
        $(server_cmd "$server") >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        ss -ltn "sport = :$port" | grep -q LISTEN && break
        sleep 0.1
    done
    if [[ $variant != idle ]]; then
        local script=()
        case $variant in
        keepalive_4096paths) script=(-s benches/wrk/paths.lua) ;;
        pipeline16) script=(-s benches/wrk/pipeline.lua) ;;
        pipeline16_4096paths) script=(-s benches/wrk/pipeline_paths.lua) ;;
        esac
        wrk -t1 -c"$CONNS" -d"${SECS}s" "${script[@]}" "http://127.0.0.1:$port/" >"$dir/wrk.txt"
        responses=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
    else
        sleep 1
    fi
    # The whole process group: workerman's master passes the signal on to its worker.
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 1
    local total
    total=$(cat "$dir"/callgrind.out.* | awk '/^totals:/ {s += $2} END {printf "%.0f", s}')
    echo "$total $responses"
}

echo "variant,server,idle_instructions,instructions,responses,instructions_per_request" >"$OUT/instructions.csv"
declare -A idle
for server in ${SERVERS:-workerman mio_http hyper}; do
    read -r idle_total _ < <(measure "$server" idle)
    idle[$server]=$idle_total
done
for variant in $VARIANTS; do
    for server in ${SERVERS:-workerman mio_http hyper}; do
        read -r total responses < <(measure "$server" "$variant")
        awk -v v="$variant" -v s="$server" -v i="${idle[$server]}" -v t="$total" -v r="$responses" \
            'BEGIN { printf "%s,%s,%.0f,%.0f,%d,%.0f\n", v, s, i, t, r, (t - i) / r }' |
            tee -a "$OUT/instructions.csv"
    done
done
echo "results in $OUT/instructions.csv" >&2
