#!/usr/bin/env bash
# SSE over TLS, the seed pattern (one repeating 2 s timer per stream), N streams, one server
# process each, three servers in alternating rounds:
#   tls      our seed_sse over https (rustls), ECDSA P-256, TLS 1.3;
#   plain    our seed_sse over plain http (the CPU-per-event reference);
#   nginx    Debian's nginx (2 worker processes: 20,000 descriptors each, and each stream costs
#            it two) terminating TLS on the same certificate in front of our plain seed_sse.
# The generator (benches/sse_load.rs, rustls on the client side for https) reports the
# server's user-space memory per stream (VmRSS of the measured process tree against the empty
# server) and its CPU per pushed event; for nginx the measured tree is nginx alone, and the
# backend behind it is read beside it (stack = nginx + backend). Medians over the rounds, and
# the ratios the targets name: tls / nginx memory per stream, tls / plain CPU per event.
#
#   bash benches/sse_tls.sh                       # 10,000 streams, 3 rounds
#   STREAMS=2000 ROUNDS=1 bash benches/sse_tls.sh # a quick look
#   STREAMS=2000 INTERVAL=0.2 SERVERS="tls plain" bash benches/sse_tls.sh   # CPU per event only
#   flock /work/bench.lock timeout 900 bash benches/sse_tls.sh   # on a shared machine
#   PIN_SERVER="taskset -c 0" PIN_LOAD="taskset -c 1" bash benches/sse_tls.sh   # pinned
#   SEED=/other/build/seed_sse-<hash> bash benches/sse_tls.sh   # another build of ours
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
STREAMS=${STREAMS:-10000}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-2500}
DURATION=${DURATION:-10}
INTERVAL=${INTERVAL:-2} # the seed's event interval, seconds
SERVERS=${SERVERS:-"tls plain nginx"}
# CPU pinning, as benches/run.sh offers it (none by default here, as the published rounds):
# PIN_SERVER="taskset -c 0" PIN_LOAD="taskset -c 1" puts the servers on one core and the
# generator on the other.
PIN_SERVER=${PIN_SERVER-}
PIN_LOAD=${PIN_LOAD-}
OUT=${OUT:-target/bench-results/sse-tls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/nginx"
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

json=$(cargo bench --no-run --message-format=json 2>/dev/null)
LOAD=$(grep -o '"executable":"[^"]*/sse_load-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)
SEED=${SEED:-$(grep -o '"executable":"[^"]*/seed_sse-[0-9a-f]*"' <<<"$json" | head -1 | cut -d'"' -f4)}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

TLS_PORT=18543 PLAIN_PORT=18544 NGINX_PORT=18545 BACKEND_PORT=18546
cat >"$OUT/nginx/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile 20000;
pid $PWD/$OUT/nginx/nginx.pid;
error_log $PWD/$OUT/nginx/error.log;
events { worker_connections 20000; }
http {
    access_log off;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $PWD/$OUT/cert.pem;
        ssl_certificate_key $PWD/$OUT/key.pem;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }
    }
}
CONF

wait_listen() { # port
    for _ in $(seq 100); do
        ss -ltn "sport = :$1" | grep -q LISTEN && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

round() { # server rep
    local server=$1 rep=$2 pid backend="" url args=()
    case $server in
    tls)
        PORT=$TLS_PORT INTERVAL=$INTERVAL COUNT=1 TLS_CERT=$OUT/cert.pem TLS_KEY=$OUT/key.pem \
            $PIN_SERVER "$SEED" start >"$OUT/tls.log" 2>&1 &
        pid=$! url=https://localhost:$TLS_PORT/ args=(--cafile "$OUT/cert.pem")
        wait_listen $TLS_PORT
        ;;
    plain)
        PORT=$PLAIN_PORT INTERVAL=$INTERVAL COUNT=1 $PIN_SERVER "$SEED" start >"$OUT/plain.log" 2>&1 &
        pid=$! url=http://127.0.0.1:$PLAIN_PORT/
        wait_listen $PLAIN_PORT
        ;;
    nginx)
        PORT=$BACKEND_PORT INTERVAL=$INTERVAL COUNT=1 $PIN_SERVER "$SEED" start >"$OUT/backend.log" 2>&1 &
        backend=$!
        $PIN_SERVER nginx -c "$PWD/$OUT/nginx/nginx.conf" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
        pid=$! url=https://localhost:$NGINX_PORT/ args=(--cafile "$OUT/cert.pem")
        wait_listen $BACKEND_PORT
        wait_listen $NGINX_PORT
        ;;
    esac
    sleep 0.5
    local backend_rss0=0 backend_cpu0=0
    [[ -n $backend ]] && backend_rss0=$("$LOAD" mem "$backend") && backend_cpu0=$("$LOAD" cpu "$backend")
    $PIN_LOAD "$LOAD" run --url "$url" "${args[@]}" --streams "$STREAMS" --rate "$RATE" --warmup 3 \
        --duration "$DURATION" --interval "$INTERVAL" --server-pid "$pid" --scenario sse_tls \
        --server "$server" --rep "$rep" --csv "$OUT/rounds.csv" >"$OUT/$server-$rep.txt" 2>&1 &
    local load=$!
    if [[ -n $backend ]]; then
        # The backend's memory with every stream up (ramp + warm-up + 3 s), and its CPU beside.
        sleep $((STREAMS / RATE + 3 + 3))
        local rss cpu0 cpu1
        rss=$("$LOAD" mem "$backend")
        cpu0=$("$LOAD" cpu "$backend")
        sleep 4
        cpu1=$("$LOAD" cpu "$backend")
        echo "$rep $backend_rss0 $rss $cpu0 $cpu1" >>"$OUT/backend.txt"
    fi
    wait "$load" || echo "sse_load failed: $OUT/$server-$rep.txt" >&2
    kill -INT "$pid" 2>/dev/null || true
    [[ -n $backend ]] && kill -INT "$backend" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    [[ -n $backend ]] && { wait "$backend" 2>/dev/null || true; }
    sleep 2
}

for rep in $(seq "$ROUNDS"); do
    for server in $SERVERS; do
        echo "== round $rep $server ($(uptime | sed 's/.*load/load/'))"
        round "$server" "$rep"
        grep -E "held|failures|rss_per_stream|cpu_per_event|client_cpu_util" "$OUT/$server-$rep.txt" |
            tr -s ' ' | tr '\n' ';'
        echo
    done
done

# Medians from the CSV: column by name, rows of one server.
col() { # server column
    awk -F, -v s="$1" -v c="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == c) k = i; next}
        $2 == s {print $k}' "$OUT/rounds.csv" | sort -g |
        awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
echo
echo "medians over $ROUNDS rounds, $STREAMS streams:"
printf '%-8s %16s %18s %14s %16s\n' server rss_per_stream_b cpu_per_event_ns held client_cpu_util
for server in $SERVERS; do
    printf '%-8s %16s %18s %14s %16s\n' "$server" "$(col "$server" rss_per_stream_b)" \
        "$(col "$server" cpu_per_event_ns)" "$(col "$server" held)" "$(col "$server" client_cpu_util)"
done
if [[ -s $OUT/backend.txt ]]; then
    # The backend behind nginx: memory per stream over its empty self; CPU over 4 s.
    backend_rss=$(awk -v n="$STREAMS" '{print ($3 - $2) / n}' "$OUT/backend.txt" | sort -g |
        awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "backend behind nginx: $backend_rss bytes per stream (median); stack = nginx + backend"
fi
tls_rss=$(col tls rss_per_stream_b) nginx_rss=$(col nginx rss_per_stream_b)
tls_cpu=$(col tls cpu_per_event_ns) plain_cpu=$(col plain cpu_per_event_ns)
awk -v a="$tls_rss" -v b="$nginx_rss" -v c="${backend_rss:-0}" -v d="$tls_cpu" -v e="$plain_cpu" 'BEGIN {
    if (b > 0) printf "memory per stream: tls / nginx %.3f (target <= 0.25); tls / (nginx + backend) %.3f\n", a / b, a / (b + c)
    if (e > 0) printf "CPU per event: tls / plain %.2f (target <= 1.3)\n", d / e }'
echo "(results in $OUT)"
