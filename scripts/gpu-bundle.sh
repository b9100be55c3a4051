#!/usr/bin/env bash
# Builds the CUDA runner and the CUDA tests and puts them, stripped, in one
# folder (default gpu-bundle/, ignored by git) that scripts/gpu-check.sh runs
# on a GPU machine without Rust or nvcc:
#
#     bash scripts/gpu-bundle.sh [BUNDLE]
#
# With `nvcc` on PATH the machine's toolkit is used; without one, the pinned
# toolkit of .ci/cuda-setup.sh (CUDA 13.0 from PyPI, stub driver for linking).
# The build goes to target/cuda so that it does not replace the CPU build's
# binaries in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE="${1:-gpu-bundle}"
if ! command -v nvcc >/dev/null; then
    eval "$(bash .ci/cuda-setup.sh)"
fi
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
TARGET=target/cuda

# One build of the runner and the tests (a separate `cargo build` would compile
# candle again, with the features the dev-dependencies leave out); it puts the
# runner at $TARGET/release/runner. The test executable's path comes from
# cargo's own report of it (the `cuda` test target's artifact, not the
# runner binary's, which the report also lists).
TEST_EXE="$(cargo test --release --features cuda --target-dir "$TARGET" --test cuda --no-run \
    --message-format=json 2>/dev/null \
    | grep '"kind":\["test"\]' | grep '"name":"cuda"' \
    | sed -nE 's/.*"executable":"([^"]+)".*/\1/p' | tail -1)"
[ -x "$TEST_EXE" ] || { echo "gpu-bundle: no test executable found" >&2; exit 1; }

mkdir -p "$BUNDLE"
cp "$TARGET/release/runner" "$BUNDLE/runner"
cp "$TEST_EXE" "$BUNDLE/cuda-tests"
strip "$BUNDLE/runner" "$BUNDLE/cuda-tests"
git rev-parse HEAD >"$BUNDLE/COMMIT" 2>/dev/null || true
du -h "$BUNDLE"/* >&2
