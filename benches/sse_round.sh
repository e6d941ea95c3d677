#!/usr/bin/env bash
# One SSE run at scale with the server's user/system CPU and context switches beside the
# generator's figures: what docs/benchmarks.md "Issue 6" tables were made with.
#
#   bash benches/sse_round.sh workerman 50000 4 out.csv            # seed pattern, seed_sse
#   bash benches/sse_round.sh mio_floor 50000 4 out.csv            # mio_sse --mode wheel
#   SCENARIO=broadcast bash benches/sse_round.sh workerman 50000 4 out.csv   # sse_broadcast, COUNT=4
#   SCENARIO=broadcast bash benches/sse_round.sh mio_floor 50000 4 out.csv   # mio_sse --mode global
#   SEED_EXE=/other/build/seed_sse-<hash> bash benches/sse_round.sh workerman_before 50000 4 out.csv
#   SCENARIO=broadcast10 bash benches/sse_round.sh workerman 100000 8 out.csv        # sse_cluster, relay
#   SCENARIO=broadcast10 bash benches/sse_round.sh workerman_redis 100000 8 out.csv  # sse_cluster, Redis
#   SCENARIO=broadcast10 bash benches/sse_round.sh mio_floor 100000 8 out.csv        # mio_sse --mode global --interval 0.1
#
# broadcast10 (issue 12): one topic, published at 10 per second by the generator (POST
# /publish?topic=b) for the window's first 7 s, fanned out through the hub to every stream of
# every process (the relay, or a redis-server on port 16399 the script starts); the floor writes
# its event to every stream of every process from a timer every 0.1 s. The redis-server's CPU is
# printed on a line of its own (the generator counts the server's process tree only).
# DURATION (default 10) and GRACE (default 3) set the window and the quiet end of it that lets
# the last publishes' fan-out finish inside it (the generator's POSTs are closed-loop: when they
# run late, the quiet end follows the last one). PUBLISH_RATE (default 10) sets the publishes per
# second, and the floor's interval with it (1 / PUBLISH_RATE):
#   PUBLISH_RATE=1 DURATION=30 GRACE=5 SCENARIO=broadcast10 bash benches/sse_round.sh workerman 100000 8 out.csv
#
# Alternate servers round after round. Needs the release builds (cargo bench --no-run, cargo
# build --release --example sse_broadcast, the peers crate).
set -u
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
SCENARIO=${SCENARIO:-seed}
json=$(cargo bench --no-run --message-format=json 2>/dev/null)
L=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)
SEED=${SEED_EXE:-$(grep -o '"executable":"[^"]*/seed_sse-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)}
server=$1 streams=$2 count=$3 csv=$4
echo "== $SCENARIO $server $streams streams, $count processes; $(uptime)"
path=
extra=()
redis_pid=
if [[ $SCENARIO == broadcast10 && $server == workerman* ]]; then
    rm -rf /tmp/sse_round.cluster && mkdir -p /tmp/sse_round.cluster
    if [[ $server == workerman_redis ]]; then
        redis-server --port 16399 --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
            >/tmp/sse_round.redis.log 2>&1 &
        redis_pid=$!
        sleep 0.5
        export REDIS_URL=redis://127.0.0.1:16399
    else
        unset REDIS_URL
    fi
    DEMO_DIR=/tmp/sse_round.cluster LISTEN=http://127.0.0.1:8091 COUNT=$count \
        target/release/examples/sse_cluster start >/tmp/sse_round.server.log 2>&1 &
    port=8091 path='events?topic=b'
    extra=(--publish-url "http://127.0.0.1:8091/publish?topic=b" --publish-rate "${PUBLISH_RATE:-10}" --grace "${GRACE:-3}")
elif [[ $SCENARIO == broadcast10 ]]; then
    floor_interval=$(awk -v r="${PUBLISH_RATE:-10}" 'BEGIN { print 1 / r }')
    benches/peers/target/release/mio_sse --port 18190 --interval "$floor_interval" --mode global \
        --count "$count" >/tmp/sse_round.server.log 2>&1 &
    port=18190
    extra=(--interval "$floor_interval")
elif [[ $server == workerman* && $SCENARIO == seed ]]; then
    PORT=18080 INTERVAL=2 COUNT=$count $SEED start >/tmp/sse_round.server.log 2>&1 &
    port=18080
elif [[ $server == workerman* ]]; then
    COUNT=$count target/release/examples/sse_broadcast start >/tmp/sse_round.server.log 2>&1 &
    port=8090 path=events
elif [[ $SCENARIO == seed ]]; then
    benches/peers/target/release/mio_sse --port 18190 --interval 2 --mode wheel --count "$count" \
        >/tmp/sse_round.server.log 2>&1 &
    port=18190
else
    benches/peers/target/release/mio_sse --port 18190 --interval 1 --mode global --count "$count" \
        >/tmp/sse_round.server.log 2>&1 &
    port=18190
fi
pid=$!
sleep 1.5
"$L" run --url "http://127.0.0.1:$port/$path" --streams "$streams" --rate 5000 --server-pid "$pid" \
    --scenario "$SCENARIO" --server "$server" --duration "${DURATION:-10}" --csv "$csv" "${extra[@]}" \
    >/tmp/sse_round.load.txt 2>&1 &
load=$!
# Ramp, 3 s warm-up, 3 s into the 10 s window: 6 s of readings.
sleep $((streams / 5000 + 3 + 3))
pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
snap() {
    for p in $pids; do
        awk '/^voluntary/{v=$2} /^nonvoluntary/{n=$2} END{printf "%d %d ", v, n}' "/proc/$p/status"
        awk '{print $14, $15}' "/proc/$p/stat"
    done | awk '{v+=$1; n+=$2; u+=$3; s+=$4} END {print v, n, u, s}'
}
ticks() { [[ -n $redis_pid ]] && awk '{print $14 + $15}' "/proc/$redis_pid/stat"; }
a=$(snap) ra=$(ticks)
sleep 6
b=$(snap) rb=$(ticks)
wait "$load"
grep -E "held|failures|events_per_s|gap_p99|rss_per_stream|cpu_per_event|fanout_p|fanout_max|reached_all|publish_holes|publish_repeats|publish_tail|unreported_procs|delivered_frac|publishes " /tmp/sse_round.load.txt | tr -s ' ' | tr '\n' ';'
echo
[[ -n $redis_pid ]] && echo "   redis-server: $(( (rb - ra) / 6 )) ticks of 10 ms per s"
echo "$a $b" | awk '{printf "   per s: voluntary %.0f involuntary %.0f user %.1f sys %.1f (ticks of 10 ms)\n",
    ($5-$1)/6, ($6-$2)/6, ($7-$3)/6, ($8-$4)/6}'
if [[ $server == workerman* ]]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
wait "$pid" 2>/dev/null
if [[ -n $redis_pid ]]; then kill -TERM "$redis_pid"; wait "$redis_pid" 2>/dev/null; fi
sleep 2
