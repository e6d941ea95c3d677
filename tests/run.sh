#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian machine: `bash tests/run.sh`.
#
# It installs what the tests use when it is missing, then runs `cargo test --no-fail-fast` (every
# test binary, even after one fails; arguments are passed on: `bash tests/run.sh --test sse`).
# What it may install:
#   - Debian packages (apt-get, as root; `apt-get update` only when one is missing):
#       chromium                     headless browser for tests/browser.rs
#       redis-server, redis-tools    a real Redis for the Redis client and its tools
#       nginx, libnginx-mod-nchan    a real reverse proxy (tests/deploy_nginx.rs, docs/deploy.md)
#       curl                         an independent HTTP client
#       logrotate, systemd           docs/deploy/'s logrotate config and systemd unit, checked by
#                                    tests/deploy_service.rs (systemd-analyze verify)
#       postgresql                   initdb and pg_ctl: tests/sse_postgres.rs runs a cluster of
#                                    its own (examples/sse_postgres.rs, LISTEN/NOTIFY to SSE)
#       iproute2                     ip and ss: tests/keepalive.rs (a peer that vanishes, in a
#                                    network namespace of its own) and tests/process_settings.rs
#     Their services are not started by the install.
#   - npm packages of the browser harness: `npm ci --prefix tests/browser` (playwright-core; it
#     drives Debian's Chromium, no browser download).
#   - Python packages (pip, only when `python3 -c 'import ...'` fails): prometheus_client (a real
#     parser for the metrics text format), websockets (an independent WebSocket client), httpx,
#     httpx-sse and aiohttp-sse-client (real SSE client libraries, tests/sse_clients.rs; Node's
#     `eventsource` comes with the browser harness's npm packages).
# Needs beforehand: Rust (cargo), Node 20 with npm, Python 3.11 with pip. Runs without stdin.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

section() { printf '\n==> %s\n' "$*"; }

# Debian package → a file it installs, or a pattern of one (present means installed).
debian_packages=(
    "chromium:/usr/bin/chromium"
    "redis-server:/usr/bin/redis-server"
    "redis-tools:/usr/bin/redis-cli"
    "nginx:/usr/sbin/nginx"
    "libnginx-mod-nchan:/usr/lib/nginx/modules/ngx_nchan_module.so"
    "curl:/usr/bin/curl"
    "logrotate:/usr/sbin/logrotate"
    "systemd:/usr/bin/systemd-analyze"
    "postgresql:/usr/lib/postgresql/*/bin/initdb"
    "iproute2:/usr/bin/ss"
    "openssl:/usr/bin/openssl"
)
# Python module → its PyPI package.
python_packages=(
    "prometheus_client:prometheus_client"
    "websockets:websockets"
    "httpx:httpx"
    "httpx_sse:httpx-sse"
    "aiohttp_sse_client:aiohttp-sse-client"
)

section "Tools the tests use: Debian packages, npm packages (tests/browser), Python packages"
missing_debian=()
for entry in "${debian_packages[@]}"; do
    package="${entry%%:*}"
    file="${entry#*:}"
    if compgen -G "$file" >/dev/null; then
        echo "present  $package ($file)"
    else
        echo "missing  $package ($file)"
        missing_debian+=("$package")
    fi
done
missing_python=()
for entry in "${python_packages[@]}"; do
    module="${entry%%:*}"
    package="${entry#*:}"
    if python3 -c "import $module" 2>/dev/null; then
        echo "present  python: $package"
    else
        echo "missing  python: $package"
        missing_python+=("$package")
    fi
done
if [ -d tests/browser/node_modules/playwright-core ]; then
    echo "present  npm: tests/browser/node_modules"
    npm_missing=0
else
    echo "missing  npm: tests/browser/node_modules"
    npm_missing=1
fi

if [ "${#missing_debian[@]}" -gt 0 ]; then
    section "apt-get install ${missing_debian[*]}"
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "not root and no sudo: install them as root: apt-get install -y ${missing_debian[*]}" >&2
            exit 1
        }
        as_root=(sudo -n)
    fi
    # Installing is not starting: keep nginx and redis-server from starting as services (a
    # policy-rc.d that refuses every start, in place only during the install).
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    remove_policy() { if [ "$created_policy" = 1 ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
    trap remove_policy EXIT
    "${as_root[@]}" apt-get update </dev/null
    "${as_root[@]}" apt-get install -y --no-install-recommends "${missing_debian[@]}" </dev/null
    remove_policy
    trap - EXIT
fi

if [ "$npm_missing" = 1 ]; then
    section "npm ci --prefix tests/browser"
    node --version
    npm ci --prefix tests/browser --no-audit --no-fund </dev/null
fi

if [ "${#missing_python[@]}" -gt 0 ]; then
    section "pip install ${missing_python[*]}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
    # A Debian-managed Python refuses plain installs (PEP 668); the tests only import them.
    python3 -m pip install --quiet "${missing_python[@]}" </dev/null ||
        python3 -m pip install --quiet --break-system-packages "${missing_python[@]}" </dev/null
fi

section "cargo test --no-fail-fast $*"
cargo test --no-fail-fast "$@"

section "tests ok"
