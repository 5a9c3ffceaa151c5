#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing (npm runs this before
# `npm test`; .ci/run too): LLVM 19 and lld 19 (GPU code generation), spirv-val (SPIR-V
# validation), Mesa's lavapipe and the Vulkan loader (Vulkan on the CPU).
set -euo pipefail
need=()
command -v ld.lld-19 >/dev/null || need+=(lld-19)
[ -e /usr/lib/llvm-19/lib/libLLVM.so.1 ] || [ -e /usr/lib/x86_64-linux-gnu/libLLVM.so.19.1 ] || need+=(llvm-19)
command -v spirv-val >/dev/null || need+=(spirv-tools)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers libvulkan1)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tkc: the tests need these Debian packages: ${need[*]} (apt-get install them as root); continuing without" >&2
  exit 0
fi
echo "tkc: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
