#!/usr/bin/env bash
# Adds every public symbol the PublicApiAnalyzers report as undeclared (RS0016) to
# GuardSpace.Core/PublicAPI.Unshipped.txt. Run it after a deliberate public API change, then review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
file=GuardSpace.Core/PublicAPI.Unshipped.txt
new=$(mktemp)
merged=$(mktemp)
trap 'rm -f "$new" "$merged"' EXIT
dotnet build GuardSpace.Core -c Release --no-incremental -p:TreatWarningsAsErrors=false 2>&1 \
  | grep -oE "RS0016: Symbol '.*' is not part of the declared public API" \
  | sed -E "s/RS0016: Symbol '(.*)' is not part of the declared public API/\1/" \
  | sort -u > "$new" || true
count=$(wc -l < "$new")
if [ "$count" -gt 0 ]; then
  { head -n 1 "$file"; { tail -n +2 "$file"; cat "$new"; } | sort -u; } > "$merged"
  mv "$merged" "$file"
fi
echo "added $count symbols to $file"
