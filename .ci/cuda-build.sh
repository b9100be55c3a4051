#!/usr/bin/env bash
# CI's CUDA step (docs/cuda.md): build the `cuda` feature (the runner and
# tests/cuda.rs) so that the CUDA path cannot rot on machines without a GPU,
# and run the CUDA tests. Without a GPU they check that the CUDA build's CPU
# path gives the golden metrics and that `device = "cuda"` fails clearly; the
# GPU comparison says it is skipped. With a GPU and a driver they compare
# CUDA with CPU on every family.
#
# Without `nvcc` on PATH the toolkit comes from .ci/cuda-setup.sh (PyPI,
# pinned). The build goes to target/cuda, beside the CPU build's
# target/release (same registry cache, separate artefacts: the feature changes
# candle itself).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvcc >/dev/null; then
    eval "$(bash .ci/cuda-setup.sh)"
fi
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -2

TARGET=target/cuda
# One build of the runner and the tests: a separate `cargo build` would compile
# candle a second time (the dev-dependencies change the features of shared
# crates). The test build puts the runner at target/cuda/release/runner too.
time cargo test --release --features cuda --target-dir "$TARGET" --test cuda --no-run

# The runtime libraries: the wheels' (where they were installed) and, only
# where no real driver is installed, the stub driver.
LIBS="${RUNNER_CUDA_LIB:-}"
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    if [ -n "${RUNNER_CUDA_STUBS:-}" ]; then
        LIBS="${LIBS:+$LIBS:}$RUNNER_CUDA_STUBS"
    fi
fi
LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    cargo test --release --features cuda --target-dir "$TARGET" --test cuda -- --nocapture
