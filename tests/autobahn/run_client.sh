#!/bin/sh
# The Autobahn WebSocket test suite (fuzzingserver mode) against our ws:// client
# (AsyncTcpConnection), driven by examples/autobahn_client.rs.
#
#   tests/autobahn/run_client.sh     # from the repository root; prints a summary, exits 1 on a failure
#
# Needs `wstest` as tests/autobahn/run.sh describes (WSTEST=... or on PATH).
# Cases 12.* and 13.* (permessage-deflate) are excluded: the client does not offer it.
set -eu
cd "$(dirname "$0")/../.."
cargo build --release --example autobahn_client
rm -rf target/autobahn-client && mkdir -p target/autobahn-client
eval "${WSTEST:-wstest}" -m fuzzingserver -s tests/autobahn/fuzzingserver.json > target/autobahn-client/wstest.log 2>&1 &
# Stop the suite (it also serves a web page on port 8080 while it runs) however it was started.
trap 'pkill -f "fuzzingserver -s tests/autobahn/fuzzingserver.json" 2>/dev/null || true' EXIT
sleep 2
target/release/examples/autobahn_client > target/autobahn-client/client.log 2>&1
python3 tests/autobahn/summary.py target/autobahn-client/reports
