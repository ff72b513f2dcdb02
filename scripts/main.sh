#!/usr/bin/env bash
# The main job. Until `steepest bench` exists (issue #5), it replays the
# example spec and prints the trajectory.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p steepest-cli
out="${TMPDIR:-/tmp}/steepest-example.out.json"
./target/release/steepest replay --spec examples/replay/adamw.spec.json --out "$out" --resume-at 2
echo "wrote $out:"
cat "$out"
