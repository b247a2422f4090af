#!/usr/bin/env bash
# CI step: runs only the hostile-file fuzz tests (GuardSpace.Core.Tests/Fuzz; docs/adapter-format.md, "Hostile files")
# and prints, per loader, the case count and the outcome classes (loaded, refused by exception type, known gap).
# The same tests also run in the normal test suite; this step exists to show the summary. About a minute on 2 cores.
# Exits non-zero when a fuzz test fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build GuardSpace.Core.Tests -c Release --nologo -v q
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test GuardSpace.Core.Tests -c Release --no-build --filter "Category=Fuzz" --logger "console;verbosity=detailed" > "$log" 2>&1 || status=$?
grep -E '^ +fuzz ' "$log" | sed -E 's/^ +//' || { tail -n 60 "$log"; echo "no fuzz summary in the test output"; exit 1; }
if [ "$status" -ne 0 ]; then
  grep -E '^\s+(Failed|.* on .* \(seed -?[0-9]+\))' "$log" | cut -c1-400 | head -n 40
  echo "fuzz tests failed"
  exit "$status"
fi
echo "fuzz cases: $(grep -E '^ +fuzz [a-z-]+: [0-9]+ cases' "$log" | sed -E 's/.*: ([0-9]+) cases.*/\1/' | awk '{ s += $1 } END { print s }')"
