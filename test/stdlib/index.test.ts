/**
 * The stdlib's shape as a whole: every kernel lowers, and every kernel has its per-target schedule
 * parameters next to it (`<kernel>Params` with an entry for each GPU target, positive numbers).
 */
import { describe, expect, test } from "vitest";
import type { KernelDef } from "../../dsl/kernel.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import * as stdlib from "../../stdlib/index.ts";

const TARGETS = ["gfx1100", "sm_90", "vulkan"];
/** Kernels whose GPU schedule has nothing to choose (a block per head, a thread per channel). */
// The tensor-core GEMMs' tile shape is the instruction's layout, written into the kernels.
// The tensor-core GEMVs (NVIDIA only) pick a variant per weight shape (stdlib/gpu/gemv.ts
// mmaGemvVariant: bench/tune.ts family "gemvMma"), not per target.
const PARAMETERLESS = [
  "attentionDecodeCombine",
  // Five scalars on one thread: nothing to tune.
  "recordToken",
  "q4GemmMma",
  "q4GemmResidualMma",
  "q4GateUpSiluGemmMma",
  "q4QkvGemmMma",
  "q4QkvRopeAppendGemmMma",
  "q4GemmWgmma",
  "q4GemmResidualWgmma",
  "q4GateUpSiluGemmWgmma",
  "q4GateUpSplitKGemmWgmma",
  "gateUpSiluSplitReduce",
  "q4QkvGemmWgmma",
  "q4QkvRopeAppendGemmWgmma",
  "f16GemmMma",
  "attentionPrefillMma",
  "q4GemvMma",
  "q4GemvResidualMma",
  "q4GemvF32Mma",
  "q4GateUpSiluMma",
  "q4GemvRmsMma",
  "q4GateUpSiluRmsMma",
  "q4QkvRopeAppendMma",
  "q4QkvRopeAppendRmsMma",
];
const exports = stdlib as unknown as Record<string, unknown>;
const kernels = Object.entries(exports).filter(
  (e): e is [string, KernelDef] => typeof e[1] === "object" && (e[1] as { kind?: string })?.kind === "kernel",
);

describe("stdlib", () => {
  test("exports the kernels a Llama needs", () => {
    expect(kernels.map(([name]) => name).sort()).toEqual(
      [
        "argmax",
        "attentionDecode",
        "attentionDecodeShared",
        "attentionDecodeSplit",
        "attentionDecodeSplitLast",
        "attentionDecodeCombine",
        "attentionDecodeWarps",
        "attentionPrefillWarps",
        "attentionPrefillMma",
        "attentionPrefill",
        "f16Gemm",
        "f16GemmTiled",
        "f16GemmMma",
        "f16Gemv",
        "f16GemvResidual",
        "f16GateUpSilu",
        "q4GemvMma",
        "q4GemvResidualMma",
        "q4GemvF32Mma",
        "q4GateUpSiluMma",
        "q4GemvRmsMma",
        "q4GateUpSiluRmsMma",
        "q4QkvRopeAppendMma",
        "q4QkvRopeAppendRmsMma",
        "kvAppend",
        "q4Embedding",
        "q4GateUpSilu",
        "q4GateUpSiluRms",
        "q4GateUpSiluRows2",
        "q4GateUpSiluGemm",
        "q4Gemm",
        "q4GemmTiled",
        "q4GemmMma",
        "q4GemmResidualMma",
        "q4GateUpSiluGemmMma",
        "q4QkvGemmMma",
        "q4QkvRopeAppendGemmMma",
        "q4GemmWgmma",
        "q4GemmResidualWgmma",
        "q4GateUpSiluGemmWgmma",
        "q4GateUpSplitKGemmWgmma",
        "gateUpSiluSplitReduce",
        "q4QkvGemmWgmma",
        "q4QkvRopeAppendGemmWgmma",
        "q4GemmResidual",
        "q4Gemv",
        "q4GemvF32",
        "q4GemvF32Rows4",
        "q4GemvResidual",
        "q4GemvResidualRows4",
        "q4GemvRows4",
        "q4GemvRows4Rms",
        "q4QkvGemm",
        "q4QkvGemv",
        "residualAdd",
        "rmsNorm",
        "ropeHalf",
        "ropeHalfAppend",
        "ropeInterleavedAppend",
        "ropeInterleaved",
        "recordToken",
        "sampleTopP",
        "siluMul",
        "softmax",
      ].sort(),
    );
  });

  test.each(kernels.map(([name]) => name))("%s lowers and has schedule parameters per target", (name) => {
    const f = lowerKernel(exports[name] as KernelDef);
    expect(f.name).toBe(name);
    if (PARAMETERLESS.includes(name)) return;
    // The two rope layouts share ropeParams.
    const params = exports[`${name}Params`] ?? exports[`${name.replace(/(Interleaved|Half)$/, "")}Params`];
    expect(params, `${name}Params`).toBeDefined();
    expect(Object.keys(params as object).sort()).toEqual(TARGETS);
    for (const p of Object.values(params as Record<string, Record<string, number>>))
      for (const v of Object.values(p)) expect(Number.isInteger(v) && v > 0).toBe(true);
  });
});
