#!/usr/bin/env bash
# Run on the GPU machine (after bash bench/device/prepare.sh here, with .device carried, and the
# Vulkan tuning kernels built: npx tsx bench/device/build-vulkan-bench.ts .device/kernels --tune):
#   bash bench/device/vulkan-layout-ab.sh
# Does NVIDIA's Vulkan driver slow the 7B step down because of its hundreds of descriptor sets
# (bench/results/vulkan-sequence-h200.json)? The 7B decode on Vulkan three ways -- a tensor a layer
# (the default), each layer kind in one buffer (--shared-layer-buffers), and that with dynamic
# offsets (one descriptor set an op kind) -- then the step's six kernels in turn over 32 layers of
# weights, with and without the same layout. Each run's results go to $OUT/<name>/.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT_OUT=${OUT:-bench/out}
S6="q4GemvRows4Rms 12288x4096 r1l128,attentionCombine (model),q4GemvResidualRows4 4096x4096 r1l32u,rmsNorm (model),q4GateUpSiluRows2 22016x4096 r1l32u,q4GemvResidual 4096x11008 r4l32u"
run() {
  local name=$1
  shift
  mkdir -p "$ROOT_OUT/$name"
  OUT="$ROOT_OUT/$name" bash bench/device/run.sh "$@" > "$ROOT_OUT/$name/run.log" 2>&1
  echo "== $name: $(grep -h -m1 -E '7B q4f16_1 decode on Vulkan|^sequence' "$ROOT_OUT/$name/run.log")"
}
run vulkan-plain vulkan --models 7b --prefill 0
run vulkan-shared vulkan --models 7b --prefill 0 --shared-layer-buffers
run vulkan-shared-dynamic vulkan --models 7b --prefill 0 --shared-layer-buffers --dynamic-offsets
KERNELS=.device/kernels/vulkan-tune-sg32.json.gz
run sequence-plain vulkan-bench --kernels "$KERNELS" --no-stats --only "(model)" --sequence "$S6"
run sequence-shared-dynamic vulkan-bench --kernels "$KERNELS" --no-stats --only "(model)" --sequence "$S6" --shared-weights --dynamic-offsets
