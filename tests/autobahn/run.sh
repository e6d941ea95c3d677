#!/bin/sh
# The Autobahn WebSocket test suite (fuzzingclient mode) against examples/websocket_echo.rs.
#
#   tests/autobahn/run.sh            # from the repository root; prints a summary, exits 1 on a failure
#   tests/autobahn/run.sh tls        # the same over wss:// (a self-signed certificate made by
#                                    # openssl; wstest's TLS client, Twisted's, does not verify it)
#
# Needs `wstest` (autobahntestsuite, a Python 2.7 program) on PATH, or WSTEST=/path/to/wstest.
# One way to get it without touching the system Python:
#   python2.7 -m pip install --prefix /opt/ab 'setuptools<45' 'wheel<0.38'
#   PYTHONPATH=/opt/ab/lib/python2.7/site-packages python2.7 -m pip install --prefix /opt/ab autobahntestsuite
# and, since zope is a namespace package, run it with the prefix added as a site directory:
#   WSTEST="python2.7 -c \"import site,sys; site.addsitedir('/opt/ab/lib/python2.7/site-packages'); \
#     sys.argv=['wstest']+sys.argv[1:]; from autobahntestsuite.wstest import run; run()\"" tests/autobahn/run.sh
# The server offers permessage-deflate, so 12.* and 13.* run too (517 cases). EXCLUDE='"12.*", "13.*"'
# leaves them out (301 cases; over wss:// wstest's Python makes the deflate cases slow).
set -eu
cd "$(dirname "$0")/../.."
cargo build --release --example websocket_echo
rm -rf target/autobahn && mkdir -p target/autobahn
spec=tests/autobahn/fuzzingclient.json
if [ "${1:-}" = tls ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout target/autobahn/key.pem -out target/autobahn/cert.pem 2>/dev/null
    export TLS_CERT=target/autobahn/cert.pem TLS_KEY=target/autobahn/key.pem
    sed 's#"ws://127.0.0.1:9001"#"wss://127.0.0.1:9001"#' "$spec" > target/autobahn/fuzzingclient.json
    spec=target/autobahn/fuzzingclient.json
fi
if [ -n "${EXCLUDE:-}" ]; then
    sed "s#\"exclude-cases\": \[\]#\"exclude-cases\": [$EXCLUDE]#" "$spec" > target/autobahn/spec.json
    spec=target/autobahn/spec.json
fi
target/release/examples/websocket_echo > target/autobahn/server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1
eval "${WSTEST:-wstest}" -m fuzzingclient -s "$spec" > target/autobahn/wstest.log 2>&1
python3 tests/autobahn/summary.py target/autobahn/reports
