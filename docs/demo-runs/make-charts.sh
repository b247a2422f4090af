#!/usr/bin/env bash
# Regenerates the demo's ablation charts and tables (docs/demo.md) from the run reports in docs/demo-runs.
cd "$(dirname "$0")/../.."
out=${TABLES:-/tmp}   # where the Markdown tables go
D="dotnet samples/GuardSpace.Demo/bin/Release/net10.0/GuardSpace.Demo.dll pareto"; R=docs/demo-runs
$D --out docs/images/demo-pareto-gpt-broad.png --title "GPT family, broad null set, 600 steps" \
  --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0)" --rename "GuardSpace (drift 0) [a]=GuardSpace (drift 0, floor 0)" --rename "GuardSpace (drift 30) [a]=GuardSpace (drift 30, floor 0)" \
  --rename "GuardSpace (floor 0.01) [b]=GuardSpace (drift 300, floor 0.01)" --rename "GuardSpace (floor 0.1) [b]=GuardSpace default (drift 300, floor 0.1)" --rename "GuardSpace (floor 0.001) [c]=GuardSpace (drift 300, floor 0.001)" \
  --rename "LoRA [a]=LoRA" --rename "AsFT [a]=AsFT (lambda 1)" --rename "AsFT (lambda 10) [a]=AsFT (lambda 10)" --rename "AsFT (lambda 100) [a]=AsFT (lambda 100)" --rename "GuardSpace-official [a]=GuardSpace-official" \
  --rename "GuardSpace (drift 30, floor 0.01) [c]=GuardSpace (drift 30, floor 0.01)" --rename "GuardSpace (drift 100, floor 0.003) [c]=GuardSpace (drift 100, floor 0.003)" \
  --rename "AsFT (lambda 0.01) [d]=AsFT (lambda 0.01)" --rename "AsFT (lambda 0.1) [d]=AsFT (lambda 0.1)" --rename "AsFT (lambda 0.3) [d]=AsFT (lambda 0.3)" \
  --rename "GuardSpace (floor 0.003) [e]=GuardSpace (drift 300, floor 0.003)" \
  $R/broad.json=a $R/floor-gpt.json=b $R/floor2-gpt.json=c $R/asft-broad.json=d $R/k-gpt.json=e > "$out"/t-broad.md
$D --out docs/images/demo-pareto-gpt-strict.png --title "GPT family, strict null set, 600 steps" \
  --rename "LoRA [a]=LoRA" --rename "AsFT [a]=AsFT (lambda 1)" --rename "GuardSpace-official [a]=GuardSpace-official" \
  --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0.01)" --rename "GuardSpace (floor 0) [a]=GuardSpace (drift 300, floor 0)" --rename "GuardSpace (drift 100, floor 0.003) [a]=GuardSpace (drift 100, floor 0.003)" \
  --rename "GuardSpace (floor 0.1) [b]=GuardSpace default (drift 300, floor 0.1)" --rename "GuardSpace (floor 0.003) [b]=GuardSpace (drift 300, floor 0.003)" \
  $R/strict2.json=a $R/k-gpt-strict.json=b > "$out"/t-strict.md
$D --out docs/images/demo-pareto-gpt-broad-x3.png --title "GPT family, broad null set, 1800 steps (--attack-multiplier 3)" \
  --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0)" --rename "LoRA [a]=LoRA" --rename "AsFT [a]=AsFT (lambda 1)" --rename "GuardSpace-official [a]=GuardSpace-official" \
  --rename "GuardSpace [b]=GuardSpace (drift 300, floor 0.01)" --rename "GuardSpace (floor 0.1) [c]=GuardSpace default (drift 300, floor 0.1)" \
  $R/x3.json=a $R/x3b.json=b $(test -f $R/n-x3.json && echo $R/n-x3.json=c) > "$out"/t-x3.md
$D --out docs/images/demo-pareto-llama-broad.png --title "Llama family, broad null set, 600 steps" \
  --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0)" --rename "LoRA [a]=LoRA" --rename "AsFT [a]=AsFT (lambda 1)" --rename "GuardSpace-official [a]=GuardSpace-official" \
  --rename "GuardSpace (floor 0.01) [b]=GuardSpace (drift 300, floor 0.01)" --rename "GuardSpace (floor 0.1) [b]=GuardSpace default (drift 300, floor 0.1)" \
  --rename "GuardSpace (floor 0.001) [c]=GuardSpace (drift 300, floor 0.001)" --rename "GuardSpace (drift 30, floor 0.01) [c]=GuardSpace (drift 30, floor 0.01)" --rename "GuardSpace (drift 100, floor 0.003) [c]=GuardSpace (drift 100, floor 0.003)" \
  --rename "GuardSpace (floor 0.003) [d]=GuardSpace (drift 300, floor 0.003)" \
  $R/llama.json=a $R/floor-llama.json=b $R/floor2-llama.json=c $R/l-llama.json=d > "$out"/t-llama.md
$D --out docs/images/demo-pareto-llama-strict.png --title "Llama family, strict null set, 600 steps" \
  --rename "GuardSpace-official [a]=GuardSpace-official" --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0.01)" --rename "GuardSpace (floor 0.1) [b]=GuardSpace default (drift 300, floor 0.1)" \
  $R/llama-strict.json=a $R/m-llama-strict.json=b > "$out"/t-llama-strict.md
$D --out docs/images/demo-pareto-llama-broad-x3.png --title "Llama family, broad null set, 1800 steps (--attack-multiplier 3)" \
  --rename "LoRA [a]=LoRA" --rename "GuardSpace-official [a]=GuardSpace-official" --rename "GuardSpace [a]=GuardSpace (drift 300, floor 0.01)" \
  --rename "GuardSpace (floor 0.1) [b]=GuardSpace default (drift 300, floor 0.1)" \
  $R/l-llama-x3.json=a $(test -f $R/o-llama-x3.json && echo $R/o-llama-x3.json=b) > "$out"/t-llama-x3.md
