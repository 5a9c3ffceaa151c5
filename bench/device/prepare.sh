#!/usr/bin/env bash
# Run on the development machine. Fills .device/ (git-ignored) with what the GPU machine needs,
# which has no Node, no LLVM and no network:
#   node.xz                     this Node binary, xz-compressed (made once: it takes a minute)
#   node_modules/koffi/         koffi's JS and its linux x64 native module only
#   kernels/selftest.json       PTX compiled here from test/backends/llvm/fixtures
#   kernels/gemm.json           the 7B prefill GEMMs (bench/device/build-gemm.ts)
#   kernels/checks.json, kernels/vulkan-checks-sg32.json
#                               every kernel as PTX and as SPIR-V (bench/device/build-checks.ts)
#   kernels/tune.json.gz        bench/tune.ts's candidate schedules
#   kernels/kernels.json.gz     bench/kernels.ts's stdlib kernels at 7B sizes
#   kernels/vulkan-bench-sg32.json.gz
#                               the Vulkan GEMV benchmark's SPIR-V (bench/device/build-vulkan-bench.ts)
#   <runner>.mjs                each runner in bench/device bundled by esbuild (koffi external)
# Idempotent: each step is skipped when its output is newer than its inputs.
# Then, on the GPU machine: bash bench/device/run.sh selftest   (carry .device)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=.device
RUNNERS=(selftest checks gemv decode trace vulkan gemm tune vulkan-checks vulkan-bench)
mkdir -p "$DEV"

# 1. Node itself.
if [ ! -s "$DEV/node.xz" ]; then
  echo "prepare: compressing $(command -v node) ($(node --version)) to $DEV/node.xz (about a minute)"
  xz -T2 -6 -c "$(command -v node)" > "$DEV/node.xz.tmp"
  mv "$DEV/node.xz.tmp" "$DEV/node.xz"
fi

# 2. koffi, only the pieces a linux x64 process loads.
KSRC=node_modules/koffi
KDST=$DEV/node_modules/koffi
if ! cmp -s "$KSRC/package.json" "$KDST/package.json"; then
  echo "prepare: copying koffi $(node -p "require('./$KSRC/package.json').version")"
  rm -rf "$KDST"
  mkdir -p "$KDST/build/koffi/linux_x64"
  cp "$KSRC/index.js" "$KSRC/indirect.js" "$KSRC/LICENSE.txt" "$KDST/"
  cp "$KSRC/build/koffi/linux_x64/koffi.node" "$KDST/build/koffi/linux_x64/"
  cp "$KSRC/package.json" "$KDST/package.json" # last: it marks the copy complete
fi

# 3. Kernels (PTX), rebuilt when a fixture or the LLVM backend changed.
KOUT=$DEV/kernels/selftest.json
if [ ! -s "$KOUT" ] || [ -n "$(find test/backends/llvm/fixtures backends/llvm bench/device/build-kernels.ts -newer "$KOUT" -print -quit)" ]; then
  npx tsx bench/device/build-kernels.ts "$DEV/kernels"
fi

# 3b. Every kernel scheduled for the GPU, with its CPU reference IR and test cases.
COUT=$DEV/kernels/checks.json
if [ ! -s "$COUT" ] || [ -n "$(find examples stdlib lower backends llama bench/device/build-checks.ts bench/device/check-case.ts -name '*.ts' -newer "$COUT" -print -quit)" ]; then
  npx tsx bench/device/build-checks.ts "$DEV/kernels"
fi

# 3b'. The same kernels with the Vulkan schedules as SPIR-V for subgroup size 32 (NVIDIA's), for
#      the vulkan-checks runner.
VCOUT=$DEV/kernels/vulkan-checks-sg32.json
if [ ! -s "$VCOUT" ] || [ -n "$(find examples stdlib lower backends llama bench/device/build-checks.ts bench/device/check-case.ts -name '*.ts' -newer "$VCOUT" -print -quit)" ]; then
  npx tsx bench/device/build-checks.ts "$DEV/kernels" --vulkan 32
fi

# 3c. The GEMV kernels at the 7B shapes for the bandwidth benchmark.
GOUT=$DEV/kernels/gemv.json
if [ ! -s "$GOUT" ] || [ -n "$(find stdlib lower backends llama/device bench/device/build-bench.ts -name '*.ts' -newer "$GOUT" -print -quit)" ]; then
  npx tsx bench/device/build-bench.ts "$DEV/kernels"
fi

# 3c'. The prefill GEMMs at the 7B shapes (M = 512), q4f16_1 and f16, several schedules each,
#      for bench/device/gemm.ts (run it with bench/device/run-gemm.sh).
MMOUT=$DEV/kernels/gemm.json
if [ ! -s "$MMOUT" ] || [ -n "$(find stdlib lower backends bench/device/build-gemm.ts -name '*.ts' -newer "$MMOUT" -print -quit)" ]; then
  npx tsx bench/device/build-gemm.ts "$DEV/kernels"
fi

# 3c''. bench/tune.ts's candidate schedules (GEMV families, RMSNorm threads), for bench/device/tune.ts.
TOUT=$DEV/kernels/tune.json.gz
if [ ! -s "$TOUT" ] || [ -n "$(find stdlib lower backends bench/tune.ts -name '*.ts' -newer "$TOUT" -print -quit)" ]; then
  npx tsx bench/tune.ts build "$DEV"
fi

# 3c'''. The Vulkan GEMV benchmark (q4 GEMV schedules, streaming kernels) as SPIR-V for subgroup
#        size 32, for bench/device/vulkan-bench.ts.
VBOUT=$DEV/kernels/vulkan-bench-sg32.json.gz
if [ ! -s "$VBOUT" ] || [ -n "$(find stdlib lower backends llama/device bench/device/build-vulkan-bench.ts bench/device/vulkan-bench-kernels.ts -name '*.ts' -newer "$VBOUT" -print -quit)" ]; then
  npx tsx bench/device/build-vulkan-bench.ts "$DEV/kernels" --subgroup 32
fi

# 3c4. bench/kernels.ts's stdlib kernels at 7B sizes (run.sh tune --set kernels times them).
KBOUT=$DEV/kernels/kernels.json.gz
if [ ! -s "$KBOUT" ] || [ -n "$(find stdlib lower backends bench/kernels.ts -name '*.ts' -newer "$KBOUT" -print -quit)" ]; then
  npx tsx bench/kernels.ts "$DEV"
fi

# 3d. The model libraries, stories15M in q4f16_1 and its expected CPU text.
MOUT=$DEV/lib/llama2-7b-q4-sm_90/manifest.json
if [ ! -s "$MOUT" ] || [ -n "$(find stdlib lower backends llama bench/device/build-model.ts -name '*.ts' -newer "$MOUT" -print -quit)" ]; then
  npx tsx bench/device/build-model.ts "$DEV"
fi

# 3e. The SPIR-V libraries for the Vulkan runner (NVIDIA's subgroup size, 32), after 3d's
#     converted stories15M.
VOUT=$DEV/lib/vulkan-sg32/llama2-7b-q4.json
if [ ! -s "$VOUT" ] || [ -n "$(find stdlib lower backends llama bench/device/vulkan.ts -name '*.ts' -newer "$VOUT" -print -quit)" ]; then
  npx tsx bench/device/vulkan.ts --build "$DEV" --subgroup 32
fi

# 3f. The Vulkan loader (the GPU machine has NVIDIA's ICD, not necessarily libvulkan.so.1):
#     Debian's libvulkan1 unpacked with dpkg -x, the symlink replaced by the file itself.
VLIB=$DEV/vulkan/usr/lib/x86_64-linux-gnu/libvulkan.so.1
if [ ! -f "$VLIB" ] || [ -L "$VLIB" ]; then
  vtmp=$(mktemp -d)
  if (cd "$vtmp" && apt-get download libvulkan1 > /dev/null 2>&1) && dpkg -x "$vtmp"/libvulkan1_*.deb "$DEV/vulkan"; then
    if [ -L "$VLIB" ]; then
      real=$(readlink -f "$VLIB")
      cp --remove-destination "$real" "$VLIB" && rm -f "$real"
    fi
    echo "prepare: unpacked $(basename "$vtmp"/libvulkan1_*.deb) into $DEV/vulkan"
  else
    echo "prepare: could not download libvulkan1 (apt-get download libvulkan1); the vulkan runner will try the GPU machine's own loader" >&2
  fi
  rm -rf "$vtmp"
fi

# 3g. NVIDIA's Vulkan driver (libGLX_nvidia.so.0) needs glvnd's dispatch libraries, which the GPU
#     machine's image lacks (vkCreateInstance then fails with VK_ERROR_INCOMPATIBLE_DRIVER): carry
#     Debian's packages; run.sh unpacks them into / before the vulkan runner starts.
GLDIR=$DEV/gl
if [ ! -s "$GLDIR/complete" ]; then
  mkdir -p "$GLDIR"
  if (cd "$GLDIR" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 > /dev/null 2>&1); then
    ls "$GLDIR"/*.deb > "$GLDIR/complete"
    echo "prepare: downloaded $(wc -l < "$GLDIR/complete") glvnd/Vulkan packages into $GLDIR"
  else
    echo "prepare: could not download the glvnd packages (apt-get download); Vulkan on the GPU machine may fail to load NVIDIA's driver" >&2
  fi
fi

# 4. Runner bundles (esbuild is fast; it rebuilds only when a source is newer than the bundle).
for r in "${RUNNERS[@]}"; do
  out=$DEV/$r.mjs
  if [ ! -s "$out" ] || [ -n "$(find bench/device backends -name '*.ts' -newer "$out" -print -quit)" ] || [ -n "$(find lower dsl llama stdlib -name '*.ts' -newer "$out" -print -quit)" ]; then
    npx esbuild "bench/device/$r.ts" --bundle --platform=node --format=esm --target=node20 \
      --external:koffi --log-level=warning --outfile="$out"
    echo "prepare: bundled $out"
  fi
done

size_mb=$(du -sm "$DEV" | cut -f1)
echo "prepare: $DEV is ${size_mb} MiB"
if [ "$size_mb" -gt 60 ]; then
  echo "prepare: $DEV is over the 60 MiB the device tool carries; remove stale files from it" >&2
  exit 1
fi
