#!/usr/bin/env bash
# CI step: builds the benchmarks in Release and runs one suite (DecompositionBenchmarks, 512x512 only) with
# BenchmarkDotNet's Dry job (one cold invocation per benchmark): proves the suites build, set up and run.
# Timings from it mean nothing. One torch thread: 2 OpenMP threads thrash on a busy 2-core runner. About a minute.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build GuardSpace.Benchmarks -c Release --nologo -v q
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT
GUARDSPACE_BENCH_SHAPES=512x512 timeout 600 dotnet run -c Release --no-build --project GuardSpace.Benchmarks -- --threads 1 \
  --filter '*.DecompositionBenchmarks.*' --job dry --anyCategories Default --artifacts "$artifacts" \
  > "$artifacts/run.log" 2>&1 || { tail -n 60 "$artifacts/run.log"; echo "benchmarks dry run failed"; exit 1; }
grep -E '^\|' "$artifacts/run.log" || { tail -n 60 "$artifacts/run.log"; echo "no result table"; exit 1; }
