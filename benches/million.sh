#!/usr/bin/env bash
# One run of the "A million streams" table in docs/benchmarks.md: a server with COUNT worker
# processes, the load generator (benches/sse_load.rs) with CLIENTS processes over ADDRS source
# addresses, one CSV row appended to CSV.
#
#   bash benches/million.sh workerman 1000000 docs/million.csv   # seed_sse, a timer per stream
#   bash benches/million.sh mio_floor 1000000 docs/million.csv   # mio_sse --mode wheel
#   SCENARIO=broadcast bash benches/million.sh workerman 1000000 out.csv  # sse_broadcast, TICK=10
#   SCENARIO=broadcast bash benches/million.sh mio_floor 1000000 out.csv  # mio_sse --mode global
#
# Settings (environment): SCENARIO (seed), INTERVAL (30 for seed, 10 for broadcast), COUNT (64
# server processes), CLIENTS (64, or STREAMS / 15,000 when more), ADDRS (CLIENTS), RATE (streams per second while ramping:
# STREAMS/180, at least 2,000), WARMUP (INTERVAL + 5 s), DURATION (2 intervals), REP (1).
# Limits it checks first: 20,000 descriptors per process (so COUNT and CLIENTS of at least
# STREAMS/19,000), about 28,000 ephemeral ports per source address, fs.file-max.
#
# Needs the release builds: cargo bench --no-run; cargo build --release --example sse_broadcast;
# (cd benches/peers && cargo build --release --bin mio_sse).
set -u
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
server=${1:?workerman or mio_floor} streams=${2:?streams} csv=${3:?csv file}
SCENARIO=${SCENARIO:-seed}
if [[ $SCENARIO == seed ]]; then INTERVAL=${INTERVAL:-30}; else INTERVAL=${INTERVAL:-10}; fi
# The generator runs at most 15,000 streams per client process (benches/sse_load.rs), so CLIENTS
# is at least STREAMS / 15,000, each on its own source address.
COUNT=${COUNT:-64} CLIENTS=${CLIENTS:-$(( (streams + 14999) / 15000 > 64 ? (streams + 14999) / 15000 : 64 ))}
ADDRS=${ADDRS:-$CLIENTS}
RATE=${RATE:-$(( streams / 180 > 2000 ? streams / 180 : 2000 ))}
WARMUP=${WARMUP:-$(( ${INTERVAL%.*} + 5 ))}
DURATION=${DURATION:-$(( 2 * ${INTERVAL%.*} ))}
REP=${REP:-1}

nofile=$(ulimit -n)
ports=$(sysctl -n net.ipv4.ip_local_port_range | awk '{print $2 - $1 + 1}')
per_server=$(( (streams + COUNT - 1) / COUNT ))
per_client=$(( (streams + CLIENTS - 1) / CLIENTS ))
per_addr=$(( (streams + ADDRS - 1) / ADDRS ))
echo "== $SCENARIO $server: $streams streams, $COUNT server processes ($per_server each)," \
    "$CLIENTS clients ($per_client each) over $ADDRS addresses ($per_addr each);" \
    "interval $INTERVAL s, ramp $RATE/s; ulimit -n $nofile, $ports ports per address," \
    "fs.file-max $(sysctl -n fs.file-max), $(free -g | awk '/^Mem/{print $7}') GiB available;" \
    "$(uptime)"
if (( per_server + 64 > nofile || per_client + 64 > nofile )); then
    echo "million.sh: $per_server streams per server process / $per_client per client process" \
        "exceed ulimit -n $nofile: raise COUNT / CLIENTS" >&2
    exit 2
fi
if (( per_addr > ports )); then
    echo "million.sh: $per_addr connections per source address exceed its $ports ports:" \
        "raise ADDRS" >&2
    exit 2
fi

json=$(cargo bench --no-run --message-format=json 2>/dev/null)
LOAD=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)
SEED=${SEED_EXE:-$(grep -o '"executable":"[^"]*/seed_sse-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)}
FLOOR=benches/peers/target/release/mio_sse
log=$(mktemp -t million-server.XXXXXX)
path=
case "$server:$SCENARIO" in
    workerman*:seed)
        PORT=18080 INTERVAL=$INTERVAL COUNT=$COUNT $SEED start >"$log" 2>&1 &
        port=18080 ;;
    workerman*:broadcast)
        COUNT=$COUNT TICK=$INTERVAL target/release/examples/sse_broadcast start >"$log" 2>&1 &
        port=8090 path=events ;;
    mio_floor*:seed)
        $FLOOR --port 18190 --interval "$INTERVAL" --mode wheel --count "$COUNT" >"$log" 2>&1 &
        port=18190 ;;
    mio_floor*:broadcast)
        $FLOOR --port 18190 --interval "$INTERVAL" --mode global --count "$COUNT" >"$log" 2>&1 &
        port=18190 ;;
    *) echo "million.sh: server $server: workerman or mio_floor" >&2; exit 2 ;;
esac
pid=$!
# Wait (at most 30 s) until every server process is up: workerman's master has COUNT worker
# children, the floor's first process serves too and has COUNT - 1.
children=$COUNT
[[ $server == mio_floor* ]] && children=$(( COUNT - 1 ))
for _ in $(seq 300); do
    (( $(pgrep -P "$pid" | wc -l) >= children )) && break
    sleep 0.1
done
sleep 1
"$LOAD" run --url "http://127.0.0.1:$port/$path" --streams "$streams" --procs "$CLIENTS" \
    --addrs "$ADDRS" --rate "$RATE" --warmup "$WARMUP" --duration "$DURATION" \
    --interval "$INTERVAL" --server-pid "$pid" --scenario "$SCENARIO" --server "$server" \
    --rep "$REP" --csv "$csv"
status=$?
grep -E "^(TCP|sockets)" /proc/net/sockstat
if [[ $server == workerman* ]]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
tail -5 "$log"
rm -f "$log"
exit $status
