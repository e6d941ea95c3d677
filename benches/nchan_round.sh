#!/usr/bin/env bash
# One fan-out round beside nchan (issue 12): STREAMS EventSource subscribers over PROCS
# processes of one server, then 5 publishes spread over a 10 s window, each timed from its POST
# to the last subscriber's receipt; the server's resident memory per subscriber.
#
#   bash benches/nchan_round.sh workerman 19500 1 out.csv   # sse_cluster (the SSE hub), COUNT=1
#   bash benches/nchan_round.sh nchan 19500 1 out.csv       # nginx + nchan, worker_processes 1
#
# Alternate the two, round after round. Needs `cargo bench --no-run`, `cargo build --release
# --example sse_cluster` and Debian's nginx with libnginx-mod-nchan (benches/nchan/nginx.conf.in).
set -u
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
json=$(cargo bench --no-run --message-format=json 2>/dev/null)
L=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)
server=$1 streams=$2 count=$3 csv=$4
echo "== nchan-side $server $streams streams, $count processes; $(uptime)"
if [[ $server == nchan ]]; then
    prefix=/tmp/nchan_round.nginx
    rm -rf "$prefix" && mkdir -p "$prefix"
    sed -e "s|@WORKERS@|$count|" -e "s|@PORT@|18300|" -e "s|@PREFIX@|$prefix|g" \
        benches/nchan/nginx.conf.in >"$prefix/nginx.conf"
    nginx -p "$prefix" -c "$prefix/nginx.conf" >/tmp/nchan_round.server.log 2>&1 &
    url=http://127.0.0.1:18300/sub publish=http://127.0.0.1:18300/pub
else
    rm -rf /tmp/nchan_round.cluster && mkdir -p /tmp/nchan_round.cluster
    env -u REDIS_URL DEMO_DIR=/tmp/nchan_round.cluster LISTEN=http://127.0.0.1:8093 COUNT=$count \
        target/release/examples/sse_cluster start >/tmp/nchan_round.server.log 2>&1 &
    url='http://127.0.0.1:8093/events?topic=b' publish='http://127.0.0.1:8093/publish?topic=b'
fi
pid=$!
sleep 1.5
"$L" run --url "$url" --streams "$streams" --rate 5000 --server-pid "$pid" \
    --scenario fanout_nchan --server "$server" --duration 10 --publishes 5 --publish-url "$publish" \
    --csv "$csv" >/tmp/nchan_round.load.txt 2>&1
grep -E "held|failures|rss_per_stream|fanout_p50|fanout_max|reached_all|delivered_frac|publishes " \
    /tmp/nchan_round.load.txt | tr -s ' ' | tr '\n' ';'
echo
if [[ $server == nchan ]]; then kill -TERM "$pid"; else kill -INT "$pid"; fi
wait "$pid" 2>/dev/null
sleep 2
