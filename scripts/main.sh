#!/usr/bin/env bash
# The main job: builds the CLI and runs the convergence lab's quick suite
# (every optimizer on the bundled workloads, every paper claim checked),
# writing bench-out/report.html. Extra arguments go to `steepest bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p steepest-cli
./target/release/steepest bench --suite quick --out bench-out "$@"
