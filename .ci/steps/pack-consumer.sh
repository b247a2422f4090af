#!/usr/bin/env bash
# Packs GuardSpace.Core and GuardSpace.Models, checks the .nupkgs' contents, then builds and runs tests/PackageConsumer
# against the PACKED GuardSpace.Core from a local folder feed (never the project reference), checks the opt-outs of the
# native patch (GuardSpacePatchNative=false and its alias GuardSpaceWeakenGlibcxx=false), and builds a copy of the SafeFineTune sample outside the repository against BOTH packed packages and
# runs its embedded default.
# Each run packs a unique prerelease version (0.1.0-ci.<time>), so the global packages cache can never hand back a
# stale GuardSpace.Core; that one version folder is removed from the cache again at the end. TorchSharp-cpu comes
# from the usual cache (no re-download). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/guardspace-consumer.XXXXXX")
suffix="ci.$(date +%s)$$"
prefix=$(sed -n 's|.*<VersionPrefix>\(.*\)</VersionPrefix>.*|\1|p' Directory.Build.props)
version="$prefix-$suffix"
cache=$(dotnet nuget locals global-packages --list | sed -E 's/^global-packages: *//')
cleanup() {
  rm -rf "$work" "${cache%/}/guardspace.core/$version" "${cache%/}/guardspace.models/$version"
}
trap cleanup EXIT

fail() { echo "pack-consumer: FAILED: $*" >&2; exit 1; }

echo "-- pack GuardSpace.Core $version"
# (The next ordinary build of GuardSpace.Core recompiles it with the plain version.)
dotnet pack GuardSpace.Core/GuardSpace.Core.csproj -c Release -o "$work/feed" -p:VersionSuffix="$suffix" \
  > "$work/pack.log" 2>&1 || { tail -n 40 "$work/pack.log"; fail "dotnet pack"; }
nupkg="$work/feed/GuardSpace.Core.$version.nupkg"
[ -f "$nupkg" ] || fail "no $nupkg"
[ -f "$work/feed/GuardSpace.Core.$version.snupkg" ] || fail "no symbol package (.snupkg)"

echo "-- package contents"
unzip -l "$nupkg" | tee "$work/contents.txt"
for entry in README.md lib/net10.0/GuardSpace.Core.dll lib/net10.0/GuardSpace.Core.xml \
             buildTransitive/GuardSpace.Core.targets build/GuardSpace.Core.targets; do
  grep -qE "[[:space:]]$entry\$" "$work/contents.txt" || fail "the package lacks $entry"
done
if grep -qE "runtimes/|libtorch|\.so$" "$work/contents.txt"; then fail "the package carries native binaries"; fi
nuspec=$(unzip -p "$nupkg" GuardSpace.Core.nuspec)
echo "$nuspec" | grep -q '<license type="expression">MIT</license>' || fail "no MIT licence expression in the nuspec"
echo "$nuspec" | grep -q '<readme>README.md</readme>' || fail "no readme in the nuspec"
echo "$nuspec" | grep -q '<dependency id="TorchSharp" ' || fail "no dependency on TorchSharp"
if echo "$nuspec" | grep -qiE '<dependency id="(TorchSharp-|libtorch)'; then fail "the package depends on a native backend"; fi
deps=$(echo "$nuspec" | grep -c '<dependency ')
[ "$deps" -eq 3 ] || fail "expected 3 dependencies (TorchSharp, Microsoft.Extensions.Logging.Abstractions, System.IO.Hashing), found $deps"
unzip -p "$nupkg" README.md | grep -q "GuardedModel.Attach" || fail "the packed README has no quick start"

echo "-- pack GuardSpace.Models $version"
dotnet pack samples/GuardSpace.Models/GuardSpace.Models.csproj -c Release -o "$work/feed" -p:VersionSuffix="$suffix" \
  > "$work/pack-models.log" 2>&1 || { tail -n 40 "$work/pack-models.log"; fail "dotnet pack GuardSpace.Models"; }
models="$work/feed/GuardSpace.Models.$version.nupkg"
[ -f "$models" ] || fail "no $models"
unzip -l "$models" | tee "$work/contents-models.txt"
for entry in README.md lib/net10.0/GuardSpace.Models.dll lib/net10.0/GuardSpace.Models.xml; do
  grep -qE "[[:space:]]$entry\$" "$work/contents-models.txt" || fail "GuardSpace.Models lacks $entry"
done
if grep -qE "runtimes/|libtorch|\.so$" "$work/contents-models.txt"; then fail "GuardSpace.Models carries native binaries"; fi
nuspec=$(unzip -p "$models" GuardSpace.Models.nuspec)
echo "$nuspec" | grep -q "<dependency id=\"GuardSpace.Core\" version=\"$version\"" || fail "GuardSpace.Models does not depend on GuardSpace.Core $version"
echo "$nuspec" | grep -q '<dependency id="TorchSharp" ' || fail "GuardSpace.Models does not depend on TorchSharp"
echo "$nuspec" | grep -q '<dependency id="Microsoft.ML.Tokenizers" ' || fail "GuardSpace.Models does not depend on Microsoft.ML.Tokenizers"
if echo "$nuspec" | grep -qiE '<dependency id="(TorchSharp-|libtorch)'; then fail "GuardSpace.Models depends on a native backend"; fi
echo "$nuspec" | grep -q '<readme>README.md</readme>' || fail "no readme in the GuardSpace.Models nuspec"

feed_config() {
  cat <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="local"><package pattern="GuardSpace.Core" /><package pattern="GuardSpace.Models" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
EOF
}

echo "-- consumer: restore from the local feed (GuardSpace.Core) and nuget.org (everything else)"
cp -r tests/PackageConsumer "$work/consumer"
rm -rf "$work/consumer/bin" "$work/consumer/obj"
feed_config > "$work/consumer/nuget.config"
cd "$work/consumer"
dotnet build -c Release -p:GuardSpaceVersion="$version" -o "$work/out" > "$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; fail "building the consumer"; }
# The target patches only where the system libstdc++ lacks the version (Debian 12 here); elsewhere it says so and skips.
patched=true
if grep -q "GLIBCXX_3.4.32" "$(ldconfig -p 2>/dev/null | sed -n 's/.*libstdc++.so.6 (libc6,x86-64) => //p' | head -n 1)" 2>/dev/null; then
  patched=false
  grep -q "GuardSpace: .* provides GLIBCXX_3.4.32" "$work/build.log" || fail "the build did not say the patch is not needed"
else
  grep -q "GuardSpace: .* lacks GLIBCXX_3.4.32" "$work/build.log" || fail "the build did not say why it patches"
  grep -q "GuardSpace: marked GLIBCXX_3.4.32 weak" "$work/build.log" || fail "the package's buildTransitive target did not run"
fi
grep -q "guardspace.core/$version" obj/project.assets.json || fail "the consumer did not restore GuardSpace.Core $version from the feed"
if grep -q '"type": "project"' obj/project.assets.json; then fail "the consumer resolved a project reference"; fi
lib="$work/out/runtimes/linux-x64/native/libLibTorchSharp.so"
if [ "$patched" = true ] && command -v readelf > /dev/null; then
  readelf -V "$lib" | grep -E "Name: GLIBCXX_3.4.32 +Flags: WEAK" || fail "GLIBCXX_3.4.32 is not weak in the consumer's output"
fi

echo "-- consumer: a no-op rebuild must neither copy nor patch the library again"
stamp=$(stat -c %y "$lib")
dotnet build -c Release -p:GuardSpaceVersion="$version" -o "$work/out" > "$work/rebuild.log" 2>&1 \
  || { tail -n 40 "$work/rebuild.log"; fail "rebuilding the consumer"; }
if grep -q "GuardSpace: marked" "$work/rebuild.log"; then fail "the no-op rebuild patched libLibTorchSharp.so again"; fi
[ "$(stat -c %y "$lib")" = "$stamp" ] || fail "the no-op rebuild copied libLibTorchSharp.so again"
if [ "$patched" = true ] && command -v readelf > /dev/null; then
  readelf -V "$lib" | grep -E "Name: GLIBCXX_3.4.32 +Flags: WEAK" > /dev/null || fail "GLIBCXX_3.4.32 is no longer weak after the rebuild"
fi

echo "-- consumer: run"
dotnet "$work/out/PackageConsumer.dll" || fail "the consumer exited with $?"

for optout in GuardSpacePatchNative GuardSpaceWeakenGlibcxx; do
  echo "-- consumer with <$optout>false</$optout>: the target must be skipped"
  dotnet build -c Release -p:GuardSpaceVersion="$version" -p:$optout=false -o "$work/out-$optout" \
    > "$work/build-$optout.log" 2>&1 || { tail -n 40 "$work/build-$optout.log"; fail "building the consumer with $optout=false"; }
  if grep -q "GuardSpace: " "$work/build-$optout.log"; then fail "$optout=false did not skip the check and the patch"; fi
  if [ "$(uname -s)" = Linux ] && command -v readelf > /dev/null; then
    readelf -V "$work/out-$optout/runtimes/linux-x64/native/libLibTorchSharp.so" | grep -E "Name: GLIBCXX_3.4.32 +Flags: none" \
      || fail "with $optout=false, GLIBCXX_3.4.32 should be left as shipped"
  fi
done

echo "-- SafeFineTune sample outside the repository, against both packed packages"
cd "$repo"
sample="$work/sample"
mkdir -p "$sample"
cp Directory.Build.props Directory.Packages.props global.json "$sample/"
# The repository's targets pick the native backend; their import of the source tree's GLIBCXX fix is dropped, so the
# fix must come from the package.
sed '/<Import Project=.*buildTransitive/,/\/>/d' Directory.Build.targets > "$sample/Directory.Build.targets"
if grep -q "<Import" "$sample/Directory.Build.targets"; then fail "the sample copy still imports the source tree's targets"; fi
feed_config > "$sample/nuget.config"
cp -r samples/GuardSpace.Samples.SafeFineTune "$sample/SafeFineTune"
rm -rf "$sample/SafeFineTune/bin" "$sample/SafeFineTune/obj"
cd "$sample/SafeFineTune"
dotnet build -c Release -p:GuardSpacePackageVersion="$version" > "$work/build-sample.log" 2>&1 \
  || { tail -n 40 "$work/build-sample.log"; fail "building the SafeFineTune copy against the packages"; }
for id in guardspace.core guardspace.models; do
  grep -q "$id/$version" obj/project.assets.json || fail "the SafeFineTune copy did not restore $id $version from the feed"
done
if grep -q '"type": "project"' obj/project.assets.json; then fail "the SafeFineTune copy resolved a project reference"; fi
grep -q "GuardSpace: .*libstdc++" "$work/build-sample.log" || fail "the SafeFineTune copy did not report the native-library check"
timeout 600 dotnet run -c Release --no-build -p:GuardSpacePackageVersion="$version" -- --out "$work/sample-out" \
  || fail "the SafeFineTune copy exited with $?"
for file in adapter_model.safetensors adapter_config.json; do
  [ -f "$work/sample-out/$file" ] || fail "the SafeFineTune copy did not write $file"
done

cd "$repo"
echo "pack-consumer: OK ($version)"

