#!/usr/bin/env bash
# Pub/sub fan-out to SUBS event-stream subscribers in one worker (docs/benchmarks.md): the time
# from a publish to the last subscriber's receipt, for a message published on Redis against the
# same worker broadcasting a locally published event, alternately in one run.
#
#   bash benches/redis_fanout.sh            # SUBS=10000 REPS=3 PUBLISHES=20 SECS=10
#
# One redis-server (started here on REDIS_PORT) and one benches/servers/redis_fanout.rs worker
# (port 18195) serve every round; sse_load holds SUBS streams and POSTs PUBLISHES events spread
# over SECS seconds, timing each from the POST to the last subscriber's receipt:
#   local  POST /publish        the worker broadcasts the body
#   redis  POST /redis-publish  the worker PUBLISHes it on Redis channel `bench`; Redis pushes it
#                               back to the worker's subscription, which broadcasts it
# Reported: the medians over the rounds of each round's median fan-out, and redis ÷ local.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBS=${SUBS:-10000}
REPS=${REPS:-3}
PUBLISHES=${PUBLISHES:-20}
SECS=${SECS:-10}
REDIS_PORT=${REDIS_PORT:-16390}
PORT=18195
PIN_SERVER=${PIN_SERVER-"taskset -c 0"}
PIN_LOAD=${PIN_LOAD-"taskset -c 1"}
OUT=${OUT:-target/bench-results/redis-fanout-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
CSV=$OUT/fanout.csv
ulimit -n "$(ulimit -Hn)"
command -v redis-server >/dev/null || { echo "needs redis-server: apt-get install redis-server" >&2; exit 1; }

bench_json=$(cargo bench --no-run --message-format=json --bench sse_load --bench redis_fanout 2>/dev/null)
exe_of() {
    grep -o "\"executable\":\"[^\"]*/$1-[0-9a-f]*\"" <<<"$bench_json" | head -1 | cut -d'"' -f4
}
LOAD=$(exe_of sse_load)
FANOUT=$(exe_of redis_fanout)
for f in "$LOAD" "$FANOUT"; do
    [[ -x $f ]] || { echo "missing executable: $f" >&2; exit 1; }
done

REDIS_PID=
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
    [[ -n $REDIS_PID ]] && { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
    >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
# shellcheck disable=SC2086
PORT=$PORT REDIS_URL=redis://127.0.0.1:$REDIS_PORT $PIN_SERVER "$FANOUT" start >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    ss -ltn "sport = :$PORT" | grep -q LISTEN && break
    sleep 0.05
done
ss -ltn "sport = :$PORT" | grep -q LISTEN || { echo "the server did not start" >&2; cat "$OUT/server.log" >&2; exit 1; }
sleep 0.5

for rep in $(seq "$REPS"); do
    for variant in local redis; do
        path=/publish
        [[ $variant == redis ]] && path=/redis-publish
        printf '\n== fan-out %s, %s subscribers, round %s\n' "$variant" "$SUBS" "$rep" >&2
        # shellcheck disable=SC2086
        $PIN_LOAD "$LOAD" run --url "http://127.0.0.1:$PORT/events" --streams "$SUBS" \
            --server-pid "$SERVER_PID" --scenario fanout --server "$variant" --rep "$rep" \
            --duration "$SECS" --warmup 1 --publish-url "http://127.0.0.1:$PORT$path" \
            --publishes "$PUBLISHES" --csv "$CSV" >>"$OUT/runs.txt" 2>&1
        sleep 1
    done
done

python3 - "$CSV" "$SUBS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(variant, column):
    values = [float(r[column]) for r in rows if r["server"] == variant and r[column] not in ("", "NaN")]
    return statistics.median(values) if values else float("nan"), len(values)
print(f"| path | subscribers | rounds | held (min) | fan-out p50 (ms, median of rounds) | fan-out max (ms, median) | server CPU ns/event (median) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for variant in ("local", "redis"):
    p50, count = med(variant, "fanout_p50_ms")
    mx, _ = med(variant, "fanout_max_ms")
    cpu, _ = med(variant, "cpu_per_event_ns")
    held = min((int(r["held"]) for r in rows if r["server"] == variant), default=0)
    print(f"| {variant} | {sys.argv[2]} | {count} | {held} | {p50:.2f} | {mx:.2f} | {cpu:.0f} |")
local, _ = med("local", "fanout_p50_ms")
redis, _ = med("redis", "fanout_p50_ms")
print(f"\nredis ÷ local (fan-out p50): {redis / local:.2f}")
PY
echo "results in $OUT" >&2
