/**
 * Every op a Llama uses, with its GPU schedule, lowered to device IR for each target and run on
 * the CPU emulation of the device (threads, shared memory, barriers, warp shuffles), against the
 * unscheduled kernel on the CPU backend. A tiny config with grouped-query attention keeps it fast.
 */
import { describe, expect, test } from "vitest";
import { llamaOps, allOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES } from "../../llama/op-choices.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { ndarray } from "../../dsl/ndarray.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { TINY_GQA } from "../../llama/presets.ts";
import { STEP_WORDS, stepWords } from "../../stdlib/sampling.ts";

const TINY = TINY_GQA;

/** Symbol values for the ops whose token count stays symbolic (prefill). */
const SYMBOLS = { m: 3, t: 3, n: 3 };

/** Valid values for positions and ids (random ones would index out of bounds). */
function fixArgs(f: PrimFunc, args: Record<string, unknown>): void {
  for (const p of f.params) {
    const name = p.kind === "buffer" ? p.buffer.name : p.v.name;
    if (name === "pos_mem" || name === "offset_mem") args[name] = ndarray("i32", [1], [5]);
    if (name === "len_mem") args[name] = ndarray("i32", [1], [6]);
    // recordToken's [token, position, length].
    if (name === "step") args[name] = ndarray("i32", [STEP_WORDS], [...stepWords(5, 2, 3)]);
    if (name === "ids" && p.kind === "buffer") {
      const n = (args[name] as { data: Int32Array }).data.length;
      args[name] = ndarray(
        "i32",
        [n],
        Array.from({ length: n }, (_, i) => (i * 7) % TINY.vocabSize),
      );
    }
    if (name === "pos" || name === "start" || name === "offset") args[name] = 4;
    if (name === "eps") args[name] = 1e-5;
    if (name === "theta") args[name] = 10000;
  }
}

const ops = [
  ...allOps(llamaOps(TINY, "q4f16_1", GPU_SCHEDULES)),
  ...allOps(llamaOps(TINY, "f16", GPU_SCHEDULES)),
];
const unique = [...new Map(ops.map((o) => [o.key, o])).values()];

// CUDA's choices where every decode GEMV tiles onto tensor cores (K a multiple of 256).
const MMA_CONFIG = { ...TINY, dim: 256, hiddenDim: 512, vocabSize: 64 };
const cudaOps = [
  CUDA_OP_CHOICES,
  { ...CUDA_OP_CHOICES, foldDecodeNorms: false, fuseDecodeRope: false },
  { ...CUDA_OP_CHOICES, foldDecodeNorms: false },
  { ...CUDA_OP_CHOICES, fuseDecodeRope: false },
].flatMap((choices) =>
  Object.values(llamaOps(MMA_CONFIG, "q4f16_1", GPU_SCHEDULES, choices).decode).filter((o) =>
    o.kernel.name.endsWith("Mma"),
  ),
);

describe("stdlib GPU schedules on the CPU emulation of device IR", () => {
  test("CUDA's choices take the tensor-core decode GEMVs", () => {
    expect([...new Set(cudaOps.map((o) => o.kernel.name))].sort()).toEqual([
      "q4GateUpSiluMma",
      "q4GateUpSiluRmsMma",
      "q4GemvF32Mma",
      "q4GemvMma",
      "q4GemvResidualMma",
      "q4GemvRmsMma",
      "q4QkvRopeAppendMma",
      "q4QkvRopeAppendRmsMma",
    ]);
  });
  for (const target of ["sm_90", "gfx942", "vulkan"] as const) {
    // The tensor-core GEMVs only where the instruction is (their schedule refuses other targets).
    const specs =
      target === "sm_90" ? [...unique, ...new Map(cudaOps.map((o) => [o.key, o])).values()] : unique;
    test.each(specs.map((o) => [o.key, o] as const))(`${target}: %s`, (_key, spec) => {
      const reference = specializedFunc(spec);
      const device = lowerToDevice(scheduledFunc(spec, target), TARGETS[target]);
      const symbols = Object.fromEntries(
        reference.symbols.map((s) => [s.name, SYMBOLS[s.name as keyof typeof SYMBOLS] ?? 3]),
      );
      const args = randomArgs(reference, symbols, 11);
      fixArgs(reference, args);
      const want = cloneArgs(args);
      compileCpu(reference)(want);
      const got = cloneArgs(args);
      cpuDeviceKernel(device)(got as never);
      const cmp = compareResults(want, got, 2e-3);
      expect(cmp.mismatches, JSON.stringify(cmp.mismatches.slice(0, 3))).toEqual([]);
    });
  }
});
