#!/usr/bin/env bash
# Side-by-side client-updates-per-second: steepest-fed's simulator vs Flower's
# simulation (Ray backend) on the same workload (logistic regression, 1,000
# clients, 100 per round, 5 local SGD steps of batch 16; see
# tools/bench/flower_fed_sim.py). Needs a throw-away venv with Flower:
#   python3 -m venv /tmp/flwrvenv && /tmp/flwrvenv/bin/pip install "flwr[simulation]"
# Usage: tools/bench/fed_speed.sh [FLOWER_ROUNDS] [STEEPEST_ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${FLWR_PYTHON:-/tmp/flwrvenv/bin/python}
FR=${1:-10}
SR=${2:-200}
ours=$(cargo run -q --release -p steepest-fed --example fed_bench -- "$SR" | tail -1)
theirs=$("$PY" tools/bench/flower_fed_sim.py --rounds "$FR" 2>/dev/null | tail -1)
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"steepest-fed {a['updates_per_s']:.0f} updates/s; Flower {b['steady_updates_per_s']:.1f} updates/s "
      f"(steady state, {b['total_updates_per_s']:.1f} including start-up); "
      f"ratio {a['updates_per_s'] / b['steady_updates_per_s']:.0f}x")
PY
