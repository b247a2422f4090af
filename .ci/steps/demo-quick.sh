#!/usr/bin/env bash
# Smoke run of the demo (docs/demo.md): every stage and every method at tiny step counts; fails on any error
# or when the table/JSON/charts were not written. Results of a quick run mean nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project samples/GuardSpace.Demo -- --quick
for f in report.json harmful_vs_accuracy.png harmful_drift.png spectrum.png; do test -s "artifacts/demo/quick/$f"; done
# The fields and rows the issue-9 checks read.
python3 - <<'PY'
import json
r = json.load(open("artifacts/demo/quick/report.json"))
assert "accuracy" in r["aligned"] and r["null_set"] in ("broad", "strict") and r["attack_steps"] > 0, "report.json lacks aligned.accuracy, null_set or attack_steps"
names = {m["method"] for m in r["methods"]}
missing = {"LoRA", "AsFT", "GuardSpace", "GuardSpace-official"} - names
assert not missing, f"report.json lacks the method rows {missing}"
assert all(len(m["per_seed"][0]["drift"]) > 0 for m in r["methods"]), "a method has no safety-monitor readings"
PY
