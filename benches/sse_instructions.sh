#!/usr/bin/env bash
# User-space instructions (callgrind) or instructions and simulated cache misses (cachegrind) per
# pushed SSE event in the seed's pattern (a Timer::add per stream, 2 s): figures that do not move
# with the machine's load. The server runs under valgrind twice with the same streams, ramp and
# warm-up, measured for SHORT and LONG seconds; (Δ count) ÷ (Δ events received) is the cost of
# one event.
#
#   bash benches/sse_instructions.sh                  # 2,000 streams, 4 s and 14 s windows
#   STREAMS=12500 TOOL=cachegrind bash benches/sse_instructions.sh
#   SERVER=mio_floor STREAMS=12500 TOOL=cachegrind bash benches/sse_instructions.sh
#
# TOOL=cachegrind simulates a 32 KiB 8-way L1d (this machine's) and, as the last level, LL
# (default 1 MiB 16-way: this machine's per-core L2; pass LL=33554432,16,64 for its 32 MiB L3).
# SERVER=workerman (the seed_sse bench server) or mio_floor (benches/peers mio_sse, wheel mode).
# With TOOL=callgrind it also prints the per-event code footprint: the 64-byte lines of machine
# code executed, by the Δ between the two runs, at least once per two events. On a push server the
# kernel's work in every `write` evicts the L1 instruction cache, so these lines are fetched again
# for each event.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${STREAMS:-2000}
SHORT=${SHORT:-4}
LONG=${LONG:-14}
PORT=${PORT:-18480}
TOOL=${TOOL:-callgrind}
SERVER=${SERVER:-workerman}
LL=${LL:-1048576,16,64}
RATE=${RATE:-2000}
OUT=${OUT:-target/bench-results/sse-$TOOL-$SERVER-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
ulimit -n "$(ulimit -Hn)"

bench_json=$(cargo bench --no-run --message-format=json 2>/dev/null)
# SEED=/other/checkout/target/release/deps/seed_sse-<hash>: another build of ours (e.g. main's).
SEED=${SEED:-$(grep -o '"executable":"[^"]*/seed_sse-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)}
LOAD=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)
case $SERVER in
    workerman) COMMAND=("$SEED" start) ;;
    mio_floor)
        cargo build --release --manifest-path benches/peers/Cargo.toml --bin mio_sse 2>/dev/null
        COMMAND=(benches/peers/target/release/mio_sse --port "$PORT" --interval 2 --mode wheel)
        ;;
    *) echo "SERVER: workerman or mio_floor" >&2; exit 2 ;;
esac
case $TOOL in
    callgrind) TOOL_ARGS=(--tool=callgrind --dump-instr=yes --compress-pos=no) ;;
    cachegrind) TOOL_ARGS=(--tool=cachegrind --cache-sim=yes --D1=32768,8,64 "--LL=$LL") ;;
    *) echo "TOOL: callgrind or cachegrind" >&2; exit 2 ;;
esac

measure() { # seconds -> "events count..." (callgrind: Ir; cachegrind: Ir D1 misses, LL misses)
    local seconds=$1 dir=$OUT/$1s master
    mkdir -p "$dir"
    PORT=$PORT INTERVAL=2 COUNT=1 valgrind "${TOOL_ARGS[@]}" --trace-children=yes \
        --"$TOOL"-out-file="$dir/$TOOL.%p" "${COMMAND[@]}" >"$dir/server.log" 2>&1 &
    master=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.2
    done
    "$LOAD" run --url "http://127.0.0.1:$PORT/" --streams "$STREAMS" --rate "$RATE" \
        --warmup 3 --duration "$seconds" >"$dir/load.txt" 2>&1
    # workerman stops on SIGINT; mio_sse has no handler, and a background job of a script
    # ignores SIGINT, so it gets SIGTERM (valgrind still writes its counts).
    if [[ $SERVER == workerman ]]; then kill -INT "$master"; else kill -TERM "$master"; fi
    wait "$master" || true
    local events
    events=$(awk '$1 == "events" {print $2; exit}' "$dir/load.txt")
    # summary: Ir [I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw], summed over the processes.
    grep -h '^summary:' "$dir"/"$TOOL".* | awk -v events="$events" '
        { for (i = 2; i <= NF; i++) sum[i] += $i; n = NF }
        END {
            if (n > 2) printf "%s %d %d %d %d %d\n", events, sum[2], sum[5], sum[8], sum[6] + sum[9], sum[7] + sum[10];
            else printf "%s %d\n", events, sum[2];
        }'
}

read -r -a short < <(measure "$SHORT")
read -r -a long < <(measure "$LONG")
events=$((long[0] - short[0]))
echo "$SERVER, seed pattern, $STREAMS streams, $TOOL: $SHORT s: ${short[*]}; $LONG s: ${long[*]}" \
    "(events, then counts)" | tee "$OUT/summary.txt"
per() { awk -v a="$1" -v b="$2" -v e="$events" 'BEGIN { printf "%.1f", (b - a) / e }'; }
if [[ $TOOL == callgrind ]]; then
    echo "user-space instructions per pushed event: $(per "${short[1]}" "${long[1]}")" | tee -a "$OUT/summary.txt"
    # The most often run instruction of each code line, per process file; the Δ between the runs.
    python3 - "$OUT" "$SHORT" "$LONG" "$events" <<'PY' | tee -a "$OUT/summary.txt"
import glob, sys
out, short, long_, events = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def lines(window):
    counts = {}
    for path in glob.glob(f"{out}/{window}s/callgrind.*"):
        process = {}
        skip = False
        for raw in open(path, errors="replace"):
            if raw.startswith("calls="):
                skip = True  # the next line is the call's inclusive cost
                continue
            if raw[:2] == "0x":
                if not skip:
                    parts = raw.split()  # instruction address, source line, Ir
                    key = int(parts[0], 16) >> 6
                    process[key] = max(process.get(key, 0), int(parts[2]) if len(parts) > 2 else 0)
            skip = False
        for key, count in process.items():
            counts[key] = counts.get(key, 0) + count
    return counts
a, b = lines(short), lines(long_)
hot = sum(1 for key, count in b.items() if count - a.get(key, 0) >= 0.5 * events)
print(f"code footprint per pushed event: {hot} lines of 64 bytes ({hot * 64} bytes)")
PY
else
    {
        echo "per pushed event: instructions $(per "${short[1]}" "${long[1]}")," \
            "data reads $(per "${short[2]}" "${long[2]}"), data writes $(per "${short[3]}" "${long[3]}"),"
        echo "  D1 misses $(per "${short[4]}" "${long[4]}"), LL ($LL) misses $(per "${short[5]}" "${long[5]}")"
    } | tee -a "$OUT/summary.txt"
fi
