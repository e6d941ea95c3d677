#!/usr/bin/env bash
# User-space instructions per pushed SSE event in the seed's pattern (a Timer::add per stream,
# 2 s), counted by valgrind's callgrind: a figure that does not move with the machine's load.
# The seed server runs under callgrind twice with the same streams, ramp and warm-up, measured
# for SHORT and LONG seconds; (Δ instructions) ÷ (Δ events received) is the cost of one event.
#
#   bash benches/sse_instructions.sh                  # 2,000 streams, 4 s and 14 s windows
#   STREAMS=5000 bash benches/sse_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${STREAMS:-2000}
SHORT=${SHORT:-4}
LONG=${LONG:-14}
PORT=${PORT:-18480}
OUT=${OUT:-target/bench-results/sse-instructions-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null

bench_json=$(cargo bench --no-run --message-format=json 2>/dev/null)
SEED=$(grep -o '"executable":"[^"]*/seed_sse-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)
LOAD=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)

measure() { # seconds -> "instructions events"
    local seconds=$1 dir=$OUT/$1s master
    mkdir -p "$dir"
    PORT=$PORT INTERVAL=2 COUNT=1 valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$dir/callgrind.%p" "$SEED" start >"$dir/server.log" 2>&1 &
    master=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.2
    done
    "$LOAD" run --url "http://127.0.0.1:$PORT/" --streams "$STREAMS" --rate 2000 \
        --warmup 3 --duration "$seconds" >"$dir/load.txt" 2>&1
    kill -INT "$master"
    wait "$master" || true
    local instructions events
    instructions=$(grep -h '^summary:' "$dir"/callgrind.* | awk '{sum += $2} END {print sum}')
    events=$(awk '$1 == "events" {print $2; exit}' "$dir/load.txt")
    echo "$instructions $events"
}

read -r short_instructions short_events < <(measure "$SHORT")
read -r long_instructions long_events < <(measure "$LONG")
per_event=$(( (long_instructions - short_instructions) / (long_events - short_events) ))
echo "seed pattern, $STREAMS streams: $SHORT s: $short_instructions instructions, $short_events events;" \
    "$LONG s: $long_instructions instructions, $long_events events"
echo "user-space instructions per pushed event: $per_event"
