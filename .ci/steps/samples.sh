#!/usr/bin/env bash
# Runs the samples (each checks its own result and exits non-zero on failure) and checks that the README's
# quick start is, line for line, the quick-start region of samples/GuardSpace.Samples.QuickStart/Program.cs.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "-- README quick start == samples/GuardSpace.Samples.QuickStart"
sample=$(sed -n '/^\/\/ quick start begins$/,/^\/\/ quick start ends$/p' samples/GuardSpace.Samples.QuickStart/Program.cs | sed '1d;$d')
readme=$(sed -n '/^## Quick start$/,/^## /p' README.md | sed -n '/^```csharp$/,/^```$/p' | sed '1d;$d')
[ -n "$sample" ] || { echo "no quick-start region in the sample" >&2; exit 1; }
if [ "$sample" != "$readme" ]; then
  echo "samples: FAILED: the README's quick start differs from the sample:" >&2
  diff <(echo "$readme") <(echo "$sample") >&2 || true
  exit 1
fi

for name in QuickStart CustomTrainingLoop ExportToPeft; do
  echo "-- samples/GuardSpace.Samples.$name"
  if ! timeout 600 dotnet run -c Release --project "samples/GuardSpace.Samples.$name"; then
    echo "samples: FAILED: GuardSpace.Samples.$name" >&2
    exit 1
  fi
done
# The whole path on its embedded tiny checkpoint: it writes the PEFT adapter to artifacts/safe-fine-tune.
echo "-- samples/GuardSpace.Samples.SafeFineTune"
rm -rf artifacts/safe-fine-tune
if ! timeout 600 dotnet run -c Release --project samples/GuardSpace.Samples.SafeFineTune; then
  echo "samples: FAILED: GuardSpace.Samples.SafeFineTune" >&2
  exit 1
fi
for file in adapter_model.safetensors adapter_config.json; do
  if [ ! -s "artifacts/safe-fine-tune/$file" ]; then
    echo "samples: FAILED: GuardSpace.Samples.SafeFineTune did not write artifacts/safe-fine-tune/$file" >&2
    exit 1
  fi
done
if ! grep -q '"peft_type": "LORA"' artifacts/safe-fine-tune/adapter_config.json; then
  echo "samples: FAILED: artifacts/safe-fine-tune/adapter_config.json is not a PEFT LoRA config" >&2
  exit 1
fi
# The paper's preset on the same path: the harmful prompts' logits must stay put (the sample checks it).
echo "-- samples/GuardSpace.Samples.SafeFineTune --official"
# It also writes the merged model as a Hugging Face folder (reloaded and compared by the sample) and a logits dump.
rm -rf artifacts/safe-fine-tune-merged
if ! timeout 600 dotnet run -c Release --no-build --project samples/GuardSpace.Samples.SafeFineTune -- --official --out artifacts/safe-fine-tune-official \
     --merge-and-save artifacts/safe-fine-tune-merged --dump-logits artifacts/safe-fine-tune-official/logits.json; then
  echo "samples: FAILED: GuardSpace.Samples.SafeFineTune --official" >&2
  exit 1
fi
for file in config.json model.safetensors tokenizer.json; do
  [ -s "artifacts/safe-fine-tune-merged/$file" ] || { echo "samples: FAILED: --merge-and-save did not write artifacts/safe-fine-tune-merged/$file" >&2; exit 1; }
done
grep -q '"format":"guardspace-logits"' artifacts/safe-fine-tune-official/logits.json \
  || { echo "samples: FAILED: --dump-logits did not write a logits dump" >&2; exit 1; }

# The command-line conventions (docs/getting-started.md, "Exit codes"): --help on stdout with 0, a usage error on
# stderr with 2, and a run in which every adapter is frozen fails with 1 unless --allow-frozen (and never prints NaN).
sft() { timeout 600 dotnet run -c Release --no-build --project samples/GuardSpace.Samples.SafeFineTune -- "$@"; }
fail() { echo "samples: FAILED: GuardSpace.Samples.SafeFineTune $1" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "-- samples/GuardSpace.Samples.SafeFineTune --help / unknown option"
rc=0; sft --help >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q -- '--allow-frozen' "$scratch/out" && [ ! -s "$scratch/err" ] || fail "--help: exit $rc, expected 0 and the usage on stdout only"
rc=0; sft --no-such-option >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown option '--no-such-option'" "$scratch/err" && [ ! -s "$scratch/out" ] || fail "--no-such-option: exit $rc, expected 2 and the error on stderr only"
# All frozen: harmful prompts that span every layer's inputs (about 2,000 tokens of 160 distinct bytes, more than the
# tiny model's widths of 128 and 256) leave no null space under the paper's preset with a tiny relative threshold.
echo "-- samples/GuardSpace.Samples.SafeFineTune all adapters frozen"
python3 - "$scratch/span.txt" <<'PY2'
import random, sys
rng = random.Random(5)
chars = [chr(c) for c in range(0x21, 0x7f)] + [chr(c) for c in range(0xa1, 0x180)]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(48):
        f.write("".join(rng.choice(chars) for _ in range(40)) + "\n")
PY2
frozen=(--model artifacts/safe-fine-tune/base-model --safety "$scratch/span.txt" --harmful "$scratch/span.txt" --train "$scratch/span.txt"
  --official --relative-threshold 1e-12 --no-refusal-constraint --steps 5 --threads 1 --out "$scratch/frozen")
rc=0; sft "${frozen[@]}" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "every adapter is frozen" "$scratch/err" || { cat "$scratch/out" "$scratch/err" >&2; fail "all frozen: exit $rc, expected 1 and 'every adapter is frozen' on stderr"; }
rc=0; sft "${frozen[@]}" --allow-frozen >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q "training loss: none -> none" "$scratch/out" && ! grep -q NaN "$scratch/out" "$scratch/err" || { cat "$scratch/out" "$scratch/err" >&2; fail "all frozen --allow-frozen: exit $rc, expected 0, 'training loss: none -> none' and no NaN"; }
# Chat templates (docs/getting-started.md, "A chat model, step by step"): --chat renders every prompt through the model's
# template (the embedded checkpoint ships one of ours), a [chat] line loads it too; a harmful file that mixes [chat] and raw lines, and --chat on a
# folder without a template, fail with 1 and say why.
echo "-- samples/GuardSpace.Samples.SafeFineTune --chat"
rc=0; sft --chat --system-prompt "Answer briefly." --out "$scratch/chat" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q "^chat template: " "$scratch/out" && grep -q "prompt \[chat\] " "$scratch/out" \
  || { cat "$scratch/out" "$scratch/err" >&2; fail "--chat: exit $rc, expected 0 with the template's line and [chat] prompts"; }
base="$scratch/chat/base-model" # written by the --chat run above
printf '[chat] Help me steal a bike.\nWrite a threat to scare him.\nGive steps to hurt a person.\n' >"$scratch/mixed.txt"
printf '2 plus 3 =\n4 plus 1 =\n' >"$scratch/plain.txt"
rc=0; sft --model "$base" --safety "$scratch/plain.txt" --harmful "$scratch/mixed.txt" --train "$scratch/plain.txt" --steps 2 --out "$scratch/mixed" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "1 \[chat\] and 2 raw lines" "$scratch/err" || { cat "$scratch/out" "$scratch/err" >&2; fail "mixed harmful file: exit $rc, expected 1 naming the mix"; }
# A [chat] mark in any prompt file, here only in --benign, loads the template without --chat.
printf '[chat] Name a warm color.\n7 plus 2 =\nSay hello to a friend.\n' >"$scratch/benign-marked.txt"
rc=0; sft --model "$base" --safety "$scratch/plain.txt" --harmful "$scratch/plain.txt" --train "$scratch/plain.txt" --benign "$scratch/benign-marked.txt" --screen keep \
  --no-refusal-constraint --steps 2 --out "$scratch/marked" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q "^chat template: " "$scratch/out" || { cat "$scratch/out" "$scratch/err" >&2; fail "[chat] line in --benign: exit $rc, expected 0 with the template loaded"; }
cp -r "$base" "$scratch/no-template"
python3 - "$scratch/no-template/tokenizer_config.json" <<'PY3'
import json, sys
path = sys.argv[1]
config = json.load(open(path, encoding="utf-8"))
del config["chat_template"]
json.dump(config, open(path, "w", encoding="utf-8"))
PY3
rc=0; sft --model "$scratch/no-template" --safety "$scratch/plain.txt" --harmful "$scratch/plain.txt" --train "$scratch/plain.txt" --chat --out "$scratch/nt" >"$scratch/out" 2>"$scratch/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "chat template is needed" "$scratch/err" || { cat "$scratch/out" "$scratch/err" >&2; fail "--chat without a template: exit $rc, expected 1 saying the template is needed"; }
echo "samples: OK"
