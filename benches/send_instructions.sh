#!/usr/bin/env bash
# User-space instructions per SSE `send` (benches/send_cost.rs under callgrind): the program runs
# with 1,000 and 21,000 events; (Δ instructions) ÷ 20,000 is the cost of one send, start-up and
# shut-down cancelling out. The same is measured on a base revision (default: the merge base
# with main), in alternating rounds, to compare a change against what it changes.
#
#   bash benches/send_instructions.sh                 # this tree against its merge base with main
#   BASE=4ca8614 ROUNDS=3 bash benches/send_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
BASE=${BASE:-$(git merge-base HEAD main)}
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The base tree, with this tree's bench program (it uses only the public API).
git archive "$BASE" | tar -x -C "$WORK"
cp benches/send_cost.rs "$WORK/benches/"
grep -q 'name = "send_cost"' "$WORK/Cargo.toml" ||
    printf '\n[[bench]]\nname = "send_cost"\nharness = false\n' >>"$WORK/Cargo.toml"

binary() { # tree -> the bench program's path
    (cd "$1" && cargo bench --no-run --bench send_cost --message-format=json 2>/dev/null) |
        grep -o '"executable":"[^"]*/send_cost-[0-9a-f]*"' | head -1 | cut -d'"' -f4
}
HERE=$(binary .)
THERE=$(binary "$WORK")

per_send() { # binary -> instructions per send
    local counts=()
    for events in 1000 21000; do
        counts+=("$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$events" 2>&1 |
            awk '/Collected :/ {print $4}')")
    done
    awk -v a="${counts[0]}" -v b="${counts[1]}" 'BEGIN { printf "%.1f", (b - a) / 20000 }'
}

for round in $(seq 1 "$ROUNDS"); do
    base=$(per_send "$THERE")
    this=$(per_send "$HERE")
    echo "round $round: base $BASE $base, this tree $this instructions per send" \
        "($(awk -v a="$base" -v b="$this" 'BEGIN { printf "%+.1f%%", (b / a - 1) * 100 }'))"
done
