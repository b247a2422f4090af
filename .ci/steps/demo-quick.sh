#!/usr/bin/env bash
# Smoke run of the demo (docs/demo.md): every stage and every method at tiny step counts; fails on any error
# or when the table/JSON/charts were not written. Results of a quick run mean nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project samples/GuardSpace.Demo -- --quick
for f in report.json harmful_vs_accuracy.png harmful_vs_accuracy_benign.png harmful_drift.png refusal_multiplier.png spectrum.png; do test -s "artifacts/demo/quick/$f"; done
# The fields and rows the issue-9 checks read.
python3 - <<'PY'
import json
r = json.load(open("artifacts/demo/quick/report.json"))
assert "accuracy" in r["aligned"] and r["null_set"] in ("broad", "strict") and r["attack_steps"] > 0, "report.json lacks aligned.accuracy, null_set or attack_steps"
names = {m["method"] for m in r["methods"]}
missing = {"LoRA", "AsFT", "GuardSpace", "GuardSpace-official"} - names
assert not missing, f"report.json lacks the method rows {missing}"
assert all(len(m["per_seed"][0]["drift"]) > 0 for m in r["methods"]), "a method has no safety-monitor readings"
# Issue 20: one entry per attack scenario, each with the aligned figures and the method rows; the default row trains
# under the refusal constraint (behaviour monitor readings) on screened data.
scenarios = [s["name"] for s in r["scenarios"]]
assert scenarios == ["explicit", "benign"], f"report.json scenarios are {scenarios}, not explicit, benign"
for s in r["scenarios"]:
    assert "accuracy" in s["aligned"] and {m["method"] for m in s["methods"]} == names, f"scenario {s['name']} lacks rows"
    gs = next(m for m in s["methods"] if m["method"] == "GuardSpace")
    assert gs["constrained"] and gs["screen"] == "drop" and len(gs["per_seed"][0]["behaviour"]) > 0, "the default row is not constrained and screened"
assert r["methods"] == r["scenarios"][0]["methods"], "the top-level methods are not the first scenario's"
PY
# The command-line conventions (docs/demo.md, "Exit codes"): --help on stdout with 0, a usage error on stderr with 2,
# and a method whose adapters are all frozen (the paper's preset with a tiny threshold, on layers it leaves no null
# space) fails the run with 1 unless --allow-frozen, which reports its loss as null, never NaN. Reuses the cached models.
demo() { dotnet run -c Release --no-build --project samples/GuardSpace.Demo -- "$@"; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rc=0; demo --help >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q -- '--allow-frozen' "$scratch/out" && [ ! -s "$scratch/err" ] || { echo "demo: --help exited $rc, expected 0 and the usage on stdout" >&2; exit 1; }
rc=0; demo --no-such-option >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown option '--no-such-option'" "$scratch/err" || { echo "demo: an unknown option exited $rc, expected 2 and the error on stderr" >&2; exit 1; }
mkdir -p "$scratch/frozen" && cp -r artifacts/demo/quick/cache "$scratch/frozen/"
frozen=(--quick --out "$scratch/frozen" --attack explicit --methods "guardspace-official@relative=1e-15;targets=o_proj+up_proj+down_proj")
rc=0; demo "${frozen[@]}" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "every adapter was frozen" "$scratch/err" || { cat "$scratch/err" >&2; echo "demo: an all-frozen method exited $rc, expected 1 and 'every adapter was frozen' on stderr" >&2; exit 1; }
rc=0; demo "${frozen[@]}" --allow-frozen >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q '"final_loss": null' "$scratch/frozen/report.json" && ! grep -q NaN "$scratch/frozen/report.json" || { cat "$scratch/err" >&2; echo "demo: --allow-frozen exited $rc, expected 0 and final_loss null without NaN" >&2; exit 1; }
echo "demo-quick: OK"
