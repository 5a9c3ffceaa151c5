#!/usr/bin/env bash
# Run on the GPU machine (made ready by bench/device/prepare.sh on the development machine):
#   bash bench/device/run.sh <runner> [args...]
# Unpacks Node to /tmp/node once, runs .device/<runner>.mjs, and leaves its results and log in
# $OUT (the device tool's output folder; bench/out when run by hand).
set -uo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${1:-selftest}
shift || true
OUT=${OUT:-bench/out}
mkdir -p "$OUT"

if [ ! -s ".device/$RUNNER.mjs" ] || [ ! -s .device/node.xz ]; then
  echo "run.sh: .device/$RUNNER.mjs or .device/node.xz is missing; run bash bench/device/prepare.sh on the development machine and carry .device" >&2
  exit 2
fi
if [ ! -x /tmp/node ]; then
  xz -dc .device/node.xz > /tmp/node.tmp && chmod +x /tmp/node.tmp && mv /tmp/node.tmp /tmp/node || exit 2
fi

# NVIDIA's Vulkan ICD loads through glvnd: unpack the carried packages (prepare.sh step 3g).
if { [ "$RUNNER" = vulkan ] || [ "$RUNNER" = vulkan-checks ] || [ "$RUNNER" = vulkan-bench ]; } && ls .device/gl/*.deb > /dev/null 2>&1; then
  for f in .device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi

{
  echo "# $(date -u +%FT%TZ) $(hostname) node $(/tmp/node --version)"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader
} > "$OUT/$RUNNER.env.txt" 2>&1

/tmp/node ".device/$RUNNER.mjs" --out "$OUT" "$@" 2>&1 | tee "$OUT/$RUNNER.log"
exit "${PIPESTATUS[0]}"
