/**
 * Every op the kernel-built Llama asks its device for, for stories15M in q4f16_1 and in f32 (the
 * stdlib kernels specialised and scheduled as llamaOps makes them with GPU_SCHEDULES, plus the
 * f16Gemv schedule llama/device/vulkan.ts adds while GPU_SCHEDULES has none), run on the
 * Vulkan device (lavapipe here: subgroup size 8, so the schedules' 32-lane reductions go through
 * shuffles and shared memory) and compared with the CPU backend running the same specialised IR on
 * the same random inputs. Inputs the kernels index with (token ids, positions, lengths) get valid
 * values; every buffer, inputs included, is compared after the launch.
 */
import { afterAll, describe, expect, test } from "vitest";
import { cpuKernel } from "../../../backends/cpu/runtime.ts";
import { cloneArgs, compareResults, randomArgs, rng } from "../../../backends/check.ts";
import { optionalVulkanRuntime } from "../../helpers/vulkan.ts";
import type { NDArray } from "../../../dsl/ndarray.ts";
import { loadBundledStories15M } from "../../../llama/bundled.ts";
import { specializedFunc } from "../../../llama/device/prepare.ts";
import type { Device, DeviceTensor, OpSpec } from "../../../llama/device/types.ts";
import { createVulkanDevice, VULKAN_OP_CHOICES, VULKAN_SCHEDULES } from "../../../llama/device/vulkan.ts";
import { allOps, llamaOps } from "../../../llama/ops.ts";
import type { PrimFunc } from "../../../lower/ir/nodes.ts";
import { stepWords } from "../../../stdlib/sampling.ts";

const rt = optionalVulkanRuntime("the Vulkan stdlib tests");
const device: Device | undefined = rt && createVulkanDevice({ runtime: rt, validate: true });
afterAll(() => {
  device?.dispose();
});

const { config } = loadBundledStories15M().weights;
/** Tokens of a prefill op (its one symbolic dimension). */
const T = 3;
/** Scalar arguments: the model's constants, and positions that keep T tokens inside the context. */
const SCALARS: Readonly<Record<string, number>> = { eps: 1e-5, theta: 10000, offset: 5, pos: 7, start: 7 };
/** One-element position tensors (OpSpec.scalarsInMemory); len spans more than a block's threads. */
const IN_MEMORY: Readonly<Record<string, number>> = { offset_mem: 5, pos_mem: 7, len_mem: 150 };

/** Binds every symbolic dimension left after specialisation (the prefill token count) to T. */
function freeSymbols(f: PrimFunc): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of f.params)
    if (p.kind === "buffer") for (const d of p.buffer.shape) if (d.kind === "var") out[d.name] = T;
  return out;
}

/** Random inputs, with valid token ids and positions where kernels index with them. */
function inputs(f: PrimFunc, seed: number): Record<string, NDArray | number> {
  const args = randomArgs(f, freeSymbols(f), seed, SCALARS);
  const rand = rng(seed + 1);
  for (const [name, v] of Object.entries(args)) {
    if (typeof v === "number") continue;
    if (name in IN_MEMORY) v.data.fill(IN_MEMORY[name]!);
    // recordToken's [token, position, length].
    else if (name === "step") v.data.set(stepWords(5, IN_MEMORY.pos_mem!, IN_MEMORY.pos_mem! + 1));
    else if (name === "ids")
      for (let i = 0; i < v.data.length; i++) v.data[i] = Math.floor(rand() * config.vocabSize);
  }
  return args;
}

/** Runs the op on the Vulkan device: every buffer written, launched, synced, read back. */
function runOnDevice(d: Device, spec: OpSpec, args: Readonly<Record<string, NDArray | number>>) {
  const tensors: Record<string, DeviceTensor> = {};
  const launch: Record<string, DeviceTensor | number> = {};
  for (const [name, v] of Object.entries(args)) {
    if (typeof v === "number") launch[name] = v;
    else {
      const t = d.tensor(v.dtype, v.shape);
      d.write(t, v.data);
      tensors[name] = launch[name] = t;
    }
  }
  d.run(d.op(spec), launch);
  d.sync();
  const out: Record<string, NDArray | number> = {};
  for (const [name, v] of Object.entries(args))
    out[name] =
      typeof v === "number" ? v : { dtype: v.dtype, shape: [...v.shape], data: d.read(tensors[name]!) };
  return out;
}

for (const format of ["q4f16_1", "f32"] as const) {
  const specs = allOps(llamaOps(config, format, VULKAN_SCHEDULES, VULKAN_OP_CHOICES));
  // f16 activations round after every operation on both sides, but the order of a reduction's
  // additions differs (threads, shuffles); f32 differs by the same reordering and fused multiply-adds.
  const tol = format === "f32" ? 2e-5 : 4e-3;
  describe.skipIf(!device)(`stories15M ${format} ops on Vulkan match the CPU backend`, () => {
    test.each(specs.map((s, i) => [s.key, s, i] as const))("%s", (_key, spec, i) => {
      const f = specializedFunc(spec);
      const args = inputs(f, 1000 + i);
      const expected = cloneArgs(args);
      cpuKernel(f)(expected);
      const got = runOnDevice(device!, spec, args);
      const cmp = compareResults(expected, got, tol);
      expect(cmp.mismatches, `${spec.key} (worst ${cmp.worst})`).toEqual([]);
    });
  });
}
