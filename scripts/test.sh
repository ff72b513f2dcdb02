#!/usr/bin/env bash
# All the tests, from a fresh machine: installs what they need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python's safetensors (and numpy) check that our state files open in Python.
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check safetensors numpy
fi
export STEEPEST_REQUIRE_PYTHON=1
cargo test --workspace --locked
# Distributed training over real processes: Open MPI, then 2-4 ranks under mpirun.
bash scripts/install-mpi.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo test -p steepest-dist --features mpi --locked --test mpi
