#!/usr/bin/env bash
# All the tests, from a fresh machine: installs what they need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python's safetensors (and numpy) check that our state files open in Python.
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check safetensors numpy
fi
export STEEPEST_REQUIRE_PYTHON=1
# Distributed training over real processes (tests/mpi.rs runs 2-4 ranks under
# mpirun): Open MPI first. The whole workspace is tested with steepest-dist's
# `mpi` feature on, in one build: the MPI bindings change features of shared
# dependencies, so a second build without it would compile burn twice.
bash scripts/install-mpi.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo test --workspace --features steepest-dist/mpi --locked
