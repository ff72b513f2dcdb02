#!/usr/bin/env bash
# Open MPI for steepest-dist's `mpi` feature (rsmpi needs mpicc/pkg-config to
# find MPI and libclang for its bindings). Idempotent: does nothing when
# mpirun and the headers are already there. Needs root and apt (Debian/Ubuntu).
set -euo pipefail
if command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1 \
  && ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-mpi: need root and apt-get to install Open MPI (openmpi-bin libopenmpi-dev libclang-dev pkg-config)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev pkg-config >/dev/null
