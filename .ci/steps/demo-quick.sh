#!/usr/bin/env bash
# Smoke run of the demo (docs/demo.md): every stage and every method at tiny step counts; fails on any error
# or when the table/JSON/charts were not written. Results of a quick run mean nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project samples/GuardSpace.Demo -- --quick
for f in report.json harmful_vs_accuracy.png spectrum.png; do test -s "artifacts/demo/quick/$f"; done
