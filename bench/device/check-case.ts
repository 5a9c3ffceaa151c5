// One kernel check as bench/device/build-checks.ts writes it, and how the runners (checks.ts for
// CUDA, vulkan-checks.ts for Vulkan) turn one of its test cases into arguments and the CPU
// backend's expected result.
import { cloneArgs, randomArgs } from "../../backends/check.ts";
import type { CpuKernel } from "../../backends/cpu/exec.ts";
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import type { VulkanArtifact } from "../../backends/vulkan/kernel.ts";
import { ndarray, type NDArray } from "../../dsl/ndarray.ts";
import type { FuncJson } from "../../lower/ir/serialize.ts";

export interface CheckCase<A extends KernelArtifact = KernelArtifact> {
  name: string;
  /** The unscheduled IR: what the CPU backend runs as the reference. */
  reference: FuncJson;
  artifact: A;
  cases: readonly Readonly<Record<string, number>>[];
  scalars: Readonly<Record<string, number>>;
  tol: number;
  /** Arguments with fixed values (positions, token ids): a number or a small i32 tensor. */
  fixed?: Record<string, number | { dtype: "i32"; shape: number[]; values: number[] }>;
}

/** The SPIR-V checks for devices of one subgroup size (kernels/vulkan-checks-sg<N>.json). */
export interface VulkanChecksFile {
  format: "tkc-vulkan-checks";
  subgroupSize: number;
  checks: CheckCase<VulkanArtifact>[];
}

/**
 * Random arguments for one case (seeded), with the fixed values, and the CPU backend's result on
 * them. Outputs the kernel only writes start as 0xFF bytes (NaN for floats) on both sides, so an
 * element the GPU forgets to write shows, and elements neither writes (a KV-cache append touches a
 * few rows) compare equal; the device runtimes poison such buffers the same way.
 */
export function caseArgs(
  c: CheckCase,
  ref: CpuKernel,
  symbols: Readonly<Record<string, number>>,
  seed: number,
): { args: Record<string, NDArray | number>; expected: Record<string, NDArray | number> } {
  const args = randomArgs(ref.func, symbols, seed, c.scalars);
  for (const [k, v] of Object.entries(c.fixed ?? {}))
    args[k] = typeof v === "number" ? v : ndarray(v.dtype, v.shape, v.values);
  for (const a of c.artifact.abi) {
    const v = args[a.name];
    if (a.kind === "buffer" && a.writes && !a.reads && v && typeof v !== "number")
      new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength).fill(0xff);
  }
  const expected = cloneArgs(args);
  ref(expected);
  return { args, expected };
}
