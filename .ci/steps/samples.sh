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
if ! timeout 600 dotnet run -c Release --no-build --project samples/GuardSpace.Samples.SafeFineTune -- --official --out artifacts/safe-fine-tune-official; then
  echo "samples: FAILED: GuardSpace.Samples.SafeFineTune --official" >&2
  exit 1
fi
echo "samples: OK"
