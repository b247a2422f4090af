#!/usr/bin/env bash
# Builds the self-contained GPU bundle of the benchmarks on a machine with the .NET SDK (no GPU needed):
#   single-file GuardSpace.Benchmarks, managed TorchSharp only (-p:TorchNative=external), partial trimming,
#   plus TorchSharp 0.107's prebuilt libLibTorchSharp.so (GLIBCXX_3.4.32 marked weak by the repository's publish
#   target) and tools/gpu/run.sh. The GPU machine supplies libtorch (PyTorch's lib folder) through LD_LIBRARY_PATH.
# Usage: tools/gpu/build.sh [output dir, default artifacts/gpu-bench]. Fails if the folder exceeds 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/artifacts/gpu-bench}
nuget=${NUGET_PACKAGES:-$HOME/.nuget/packages}
rm -rf "$out"
mkdir -p "$out"

cd "$root"
dotnet restore GuardSpace.Benchmarks -r linux-x64 -p:TorchNative=external >/dev/null
lts=$(ls "$nuget"/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so 2>/dev/null || true)
if [ -z "$lts" ]; then
  # The managed-only restore does not bring the natives; the cpu package (restored by a normal build) does.
  dotnet restore GuardSpace.Benchmarks >/dev/null
  lts=$(ls "$nuget"/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so)
fi
# Copied BEFORE publishing so that the publish target (GuardSpaceWeakenPublishedLibTorchSharpGlibcxx) patches this copy.
cp "$lts" "$out/libLibTorchSharp.so"
chmod u+w "$out/libLibTorchSharp.so"

dotnet publish GuardSpace.Benchmarks -c Release -r linux-x64 --self-contained \
  -p:TorchNative=external -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:IncludeNativeLibrariesForSelfExtract=false \
  -o "$out" 2>&1 | grep -E "error|warn|GuardSpace: marked|->" || true
[ -x "$out/GuardSpace.Benchmarks" ] || { echo "publish failed: no $out/GuardSpace.Benchmarks"; exit 1; }
cp tools/gpu/run.sh "$out/run.sh"
chmod +x "$out/run.sh"
rm -f "$out"/*.pdb

size=$(du -sb "$out" | cut -f1)
echo "bundle: $out ($((size / 1048576)) MiB)"
ls -la "$out"
if [ "$size" -gt $((64 * 1048576)) ]; then
  echo "bundle exceeds 64 MiB"
  exit 1
fi
