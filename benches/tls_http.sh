#!/usr/bin/env bash
# HTTPS against nginx on the same certificate (ECDSA P-256, TLS 1.3), one worker process each:
#   handshake: `Connection: close` on every request, so each request is a new connection and a
#              full handshake: no session resumption on either server (nginx: no session cache
#              or tickets; ours: TLS_NO_TICKET=1, `SslContext::no_ticket`). wrk keeps its
#              OpenSSL session across reconnects (SSL_clear) and resumes where a server lets it;
#   keepalive: the hello over kept-alive connections.
# For each, wrk's request count and the server's CPU time (utime + stime of its processes from
# /proc, over the run) give requests per server CPU-second, the figure that does not depend on
# how much of the 2 shared cores the load generator takes. Rounds alternate between the
# servers; the medians are printed.
#
#   bash benches/tls_http.sh
#   ROUNDS=5 SECS=5 CONNS=50 VARIANTS="handshake keepalive" bash benches/tls_http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-"handshake keepalive"}
OUT=${OUT:-target/bench-results/tls-http-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

if [[ -z ${HELLO:-} ]]; then
    bench_json=$(cargo bench --no-run --message-format=json 2>/dev/null)
    HELLO=$(grep -o '"executable":"[^"]*/hello_server-[0-9a-f]*"' <<<"$bench_json" | head -1 | cut -d'"' -f4)
fi

# One ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

OUR_PORT=18443
NGINX_PORT=18444
mkdir -p "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $PWD/$OUT/nginx/nginx.pid;
error_log $PWD/$OUT/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $PWD/$OUT/cert.pem;
        ssl_certificate_key $PWD/$OUT/key.pem;
        location / { return 200 "hello"; }
    }
}
CONF

# CPU ticks (utime + stime) of a process and its children's threads, summed over its tree.
cpu_ticks() { # pid...
    local total=0 p
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
descendants() { # pid -> itself and its children
    echo "$1"
    pgrep -P "$1" || true
}

start_server() { # name -> prints the pids to measure
    case $1 in
    workerman)
        PORT=$OUR_PORT COUNT=1 TLS_CERT=$OUT/cert.pem TLS_KEY=$OUT/key.pem TLS_NO_TICKET=1 \
            "$HELLO" start >"$OUT/workerman.log" 2>&1 &
        echo $! >"$OUT/workerman.pid"
        port=$OUR_PORT
        ;;
    nginx)
        nginx -c "$PWD/$OUT/nginx/nginx.conf" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
        echo $! >"$OUT/nginx.pid"
        port=$NGINX_PORT
        ;;
    esac
    for _ in $(seq 100); do
        ss -ltn "sport = :$port" | grep -q LISTEN && return 0
        sleep 0.1
    done
    echo "$1 did not listen on $port" >&2
    return 1
}
stop_server() {
    local pid
    pid=$(cat "$OUT/$1.pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

round() { # server variant -> "requests cpu_seconds"
    local server=$1 variant=$2 port pid pids before after requests header=()
    start_server "$server"
    pid=$(cat "$OUT/$server.pid")
    port=$([[ $server == workerman ]] && echo $OUR_PORT || echo $NGINX_PORT)
    [[ $variant == handshake ]] && header=(-H "Connection: close")
    sleep 0.3
    # shellcheck disable=SC2207
    pids=($(descendants "$pid"))
    before=$(cpu_ticks "${pids[@]}")
    wrk -t1 -c"$CONNS" -d"${SECS}s" "${header[@]}" "https://127.0.0.1:$port/" >"$OUT/$server-$variant.wrk" 2>&1
    after=$(cpu_ticks "${pids[@]}")
    stop_server "$server"
    requests=$(awk '/requests in/{print $1}' "$OUT/$server-$variant.wrk")
    echo "$requests $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}')"
}

median() { sort -g | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

printf '%-10s %-10s %12s %12s %16s\n' variant server requests cpu_s requests/cpu_s
for variant in $VARIANTS; do
    for r in $(seq "$ROUNDS"); do
        for server in workerman nginx; do
            read -r requests cpu < <(round "$server" "$variant")
            per=$(awk -v r="$requests" -v c="$cpu" 'BEGIN{printf "%.0f", (c > 0) ? r / c : 0}')
            echo "$variant $server $r $requests $cpu $per" >>"$OUT/rounds.txt"
            printf '%-10s %-10s %12s %12s %16s   (round %s)\n' "$variant" "$server" "$requests" "$cpu" "$per" "$r"
        done
    done
done
echo
echo "medians (requests per server CPU-second), ratio workerman / nginx:"
for variant in $VARIANTS; do
    ours=$(awk -v v="$variant" '$1 == v && $2 == "workerman" {print $6}' "$OUT/rounds.txt" | median)
    theirs=$(awk -v v="$variant" '$1 == v && $2 == "nginx" {print $6}' "$OUT/rounds.txt" | median)
    awk -v v="$variant" -v o="$ours" -v t="$theirs" 'BEGIN{printf "%-10s workerman %8.0f   nginx %8.0f   ratio %.2f\n", v, o, t, (t > 0) ? o / t : 0}'
done
echo "(results in $OUT)"
