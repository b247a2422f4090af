#!/usr/bin/env bash
# Runs on an NVIDIA machine with PyTorch (CUDA) installed and no .NET, from the bundle made by tools/gpu/build.sh
# (this script is copied next to the GuardSpace.Benchmarks executable):
#   1. a numeric self-test on CUDA against float64 CPU results (svd, eigh, cholesky, solve, projector, decomposition,
#      one guarded training step); prints "N passed, N failed" and stops on failure;
#   2. the TrainingStep and Decomposition (square shapes) suites on CUDA;
#   3. the result tables (BenchmarkDotNet's GitHub markdown reports).
# Environment: TORCH_LIB (default: torch's lib folder from python3), DEVICE (default cuda; "cpu" validates the
# script without a GPU), RESULTS (default $OUT/gpu-results or ./gpu-results), SUITES (default "TrainingStep Decomposition"),
# BENCH_ARGS (default "--warmupCount 2 --iterationCount 10").
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exe="$here/GuardSpace.Benchmarks"
device=${DEVICE:-cuda}
results=${RESULTS:-${OUT:-.}/gpu-results}
suites=${SUITES:-"TrainingStep Decomposition"}
bench_args=${BENCH_ARGS:-"--warmupCount 2 --iterationCount 10"}

if [ -z "${TORCH_LIB:-}" ]; then
  TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) || {
    echo "set TORCH_LIB to the folder holding libtorch_cpu.so / libtorch_cuda.so (python3 could not import torch)"; exit 2; }
fi
[ -f "$TORCH_LIB/libtorch_cpu.so" ] || { echo "no libtorch_cpu.so in $TORCH_LIB"; exit 2; }
export LD_LIBRARY_PATH="$here:$TORCH_LIB:${LD_LIBRARY_PATH:-}"
export LD_BIND_NOW=1                       # a missing libtorch symbol fails at load time, not mid-run
export DOTNET_BUNDLE_EXTRACT_BASE_DIR=${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-$here/.bundle}
mkdir -p "$results"
python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>/dev/null || true
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

echo "== self-test ($device) =="
"$exe" --device "$device" --self-test 2>&1 | tee "$results/self-test.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  echo "self-test failed (rc=$rc): not benchmarking a libtorch that computes wrong results"
  exit "$rc"
fi

status=0
for suite in $suites; do
  echo "== $suite ($device) =="
  filter="*.${suite}Benchmarks.*"
  # shellcheck disable=SC2086
  (cd "$results" && "$exe" --device "$device" --filter "$filter" --anyCategories Default $bench_args --artifacts "$results/$suite") \
    > "$results/$suite.log" 2>&1 || { echo "$suite failed, see $results/$suite.log"; status=1; }
  tail -n 3 "$results/$suite.log"
done

echo "== results ($device) =="
head -n 1 "$results/self-test.txt"
for report in "$results"/*/results/*-report-github.md; do
  [ -f "$report" ] || continue
  echo
  echo "### $(basename "$report" -report-github.md)"
  cat "$report"
done
exit $status
