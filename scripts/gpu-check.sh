#!/usr/bin/env bash
# The GPU check (docs/cuda.md): on a machine with an NVIDIA GPU, run the
# CUDA tests (CUDA against CPU on every family) and `runner bench` on CUDA and
# on CPU for the paper's flagship files at their own (the paper's) batch
# sizes, and write one table.
#
#     bash scripts/gpu-check.sh [BUNDLE] [OUT]
#
# BUNDLE (default gpu-bundle/) holds the prebuilt `runner` and `cuda-tests`
# binaries of scripts/gpu-bundle.sh, so the GPU machine needs neither Rust nor
# nvcc; with no bundle, `cargo` builds them here. The CUDA runtime libraries
# (cuBLAS, cudart, cuRAND, NVRTC of CUDA 13) are taken from the system's
# library path, else from the NVIDIA wheels of this machine's Python
# (`nvidia/*/lib`), else from $RUNNER_CUDA_LIBS. OUT (default
# gpu-check/, or $OUT) receives gpu-check.md (the table), tests.log and the
# bench output. RUNNER_GPU_CHECK_DEVICES="cpu" runs the bench part on the CPU
# alone (to try the script on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE="${1:-gpu-bundle}"
DEST="${2:-${OUT:-gpu-check}}"
DEVICES="${RUNNER_GPU_CHECK_DEVICES:-cuda cpu}"
mkdir -p "$DEST"
REPORT="$DEST/gpu-check.md"
log() { echo "gpu-check: $*" >&2; }

# File, timed steps on CUDA, timed steps on CPU, the paper's budget in steps.
# Budgets: grid 24,000 steps (d = 4, H = 32), QM9 1,000 and sEH 2,000 rounds,
# Manywell 10,000 iterations (the experiment files' own `train.steps`).
# The CPU counts are small where a CPU step is slow (QM9's 1024-wide network,
# sEH, Manywell's 256 x 100-step batches): the whole check takes a few minutes.
BENCH=(
    "grid_d4_h32_teacher 200 200"
    "qm9_teacher_prt 50 20"
    "seh_teacher_prt 30 10"
    "many_well_teacher 50 5"
)

# --- binaries -------------------------------------------------------------
if [ -x "$BUNDLE/runner" ]; then
    RUNNER="$(cd "$BUNDLE" && pwd)/runner"
    TESTS="$(cd "$BUNDLE" && pwd)/cuda-tests"
else
    log "no $BUNDLE/runner: building with cargo (--features cuda)"
    bash scripts/gpu-bundle.sh "$BUNDLE"
    RUNNER="$(cd "$BUNDLE" && pwd)/runner"
    TESTS="$(cd "$BUNDLE" && pwd)/cuda-tests"
fi

# --- CUDA runtime libraries -----------------------------------------------
if [[ " $DEVICES " == *" cuda "* ]]; then
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu-check: GPU /' >&2
    else
        log "nvidia-smi not found: is there a GPU and a driver?"
    fi
    if ldd "$RUNNER" | grep -q "not found"; then
        LIBS="${RUNNER_CUDA_LIBS:-$(python3 - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
dirs = []
for lib in ["libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13",
            "libcurand.so.10", "libnvrtc.so.13"]:
    for r in roots:
        hits = sorted(glob.glob(os.path.join(r, "nvidia", "**", lib), recursive=True))
        if hits:
            d = os.path.dirname(hits[0])
            if d not in dirs:
                dirs.append(d)
            break
print(":".join(dirs))
EOF
)}"
        export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        log "CUDA libraries from $LIBS"
    fi
    if ldd "$RUNNER" | grep "not found" >&2; then
        log "the runner's libraries above are missing: set RUNNER_CUDA_LIBS to their folder"
        exit 1
    fi
fi

{
    echo "# GPU check"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- GPU: $( (nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo none) | head -1)"
    echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- runner: $("$RUNNER" --version 2>/dev/null || echo '?')"
    echo
} >"$REPORT"

# --- the CUDA tests --------------------------------------------------------
if [[ " $DEVICES " == *" cuda "* ]]; then
    log "CUDA tests"
    set +e
    RUNNER_TEST_BIN="$RUNNER" RUNNER_TEST_ROOT="$PWD" RUNNER_REQUIRE_CUDA=1 \
        "$TESTS" --test-threads 1 --nocapture >"$DEST/tests.log" 2>&1
    rc=$?
    set -e
    tail -5 "$DEST/tests.log" >&2
    {
        echo "## CUDA against CPU (tests/cuda.rs, exit $rc)"
        echo
        echo "| case | agreement |"
        echo "|---|---|"
        grep '^agreement ' "$DEST/tests.log" | sed -E 's/^agreement ([^ ]+) \(([^)]+)\): (.*)$/| \1 (\2) | \3 |/'
        grep -E '^test result' "$DEST/tests.log" | sed 's/^/\n/'
        echo
    } >>"$REPORT"
fi

# --- the bench ---------------------------------------------------------------
# "NAME: 12.34 steps/s (200 steps in 16.2s; 921 states per batch; ...)"
rate() { sed -nE 's/^[^:]+: ([0-9.]+) [a-z]+\/s.*/\1/p' "$1" | tail -1; }
states() { sed -nE 's/.*; ([0-9.]+) states per batch;.*/\1/p' "$1" | tail -1; }
budget() { "$RUNNER" validate "experiments/$1.toml" | sed -nE 's/.*, ([0-9]+) ([a-z]+)(;.*)?$/\1 \2/p'; }
# Seconds as "12 s", "3.4 min" or "2.1 h".
human() { awk -v s="$1" 'BEGIN { if (s < 120) printf "%.0f s", s; else if (s < 7200) printf "%.1f min", s / 60; else printf "%.1f h", s / 3600 }'; }

{
    echo "## Training speed (runner bench, training only, no evaluation)"
    echo
    echo "| file | states per batch | CPU | CUDA | CUDA / CPU | paper budget | CPU wall | CUDA wall |"
    echo "|---|---|---|---|---|---|---|---|"
} >>"$REPORT"
for row in "${BENCH[@]}"; do
    read -r file n_cuda n_cpu <<<"$row"
    read -r steps unit <<<"$(budget "$file")"
    declare -A r=()
    st=""
    for dev in $DEVICES; do
        n="$n_cpu"
        [ "$dev" = cuda ] && n="$n_cuda"
        o="$DEST/bench-$file-$dev.txt"
        log "bench $file on $dev ($n $unit)"
        if "$RUNNER" bench "experiments/$file.toml" --steps "$n" --warmup 3 --no-peak --set "device=$dev" >"$o" 2>&1; then
            r[$dev]="$(rate "$o")"
            st="$(states "$o")"
        else
            r[$dev]=""
            log "bench $file on $dev failed: $(tail -1 "$o")"
        fi
    done
    cell() { [ -n "${r[$1]:-}" ] && echo "${r[$1]} $unit/s" || echo "—"; }
    wall() { [ -n "${r[$1]:-}" ] && human "$(awk -v n="$steps" -v v="${r[$1]}" 'BEGIN { print n / v }')" || echo "—"; }
    ratio="—"
    if [ -n "${r[cuda]:-}" ] && [ -n "${r[cpu]:-}" ]; then
        ratio="$(awk -v a="${r[cuda]}" -v b="${r[cpu]}" 'BEGIN { printf "%.2f×", a / b }')"
    fi
    echo "| $file | ${st:-—} | $(cell cpu) | $(cell cuda) | $ratio | $steps $unit | $(wall cpu) | $(wall cuda) |" >>"$REPORT"
    unset r
done
{
    echo
    echo "Walls are the paper budget divided by the measured rate: training only,"
    echo "at the rate of the first steps (batches grow as a grid policy learns)."
} >>"$REPORT"

cat "$REPORT"
if [ "${rc:-0}" -ne 0 ]; then
    log "the CUDA tests failed (exit $rc): $DEST/tests.log"
    exit "$rc"
fi
