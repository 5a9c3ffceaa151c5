import { describe, expect, it } from "vitest";
import { printFunc } from "../../lower/ir/printer.ts";
import { compactLocalPass } from "../../lower/passes/compact_local.ts";
import { lowerStages } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { expectDeviceMatches, matmulGpu, matmulRef } from "./helpers.ts";
import { matmulTiled } from "./kernels.ts";

describe("compact_local", () => {
  it("shrinks a local tile indexed by the thread indices to one element per thread (golden)", () => {
    const [guarded, compacted] = lowerStages(matmulGpu().func, TARGETS.sm_90, "compact_local").slice(-2);
    expect(printFunc(guarded!.func)).toContain("const acc = local(f32, [8, 8]);");
    const text = printFunc(compacted!.func);
    expect(text).toContain("const acc = local(f32, [1]);");
    expect(text).toContain("acc[0] = acc[0] + As[ty2][ki] * Bs[ki][tx2];");
    expect(text).toContain("c[by * 8 + ty3][bx * 8 + tx3] = acc[0];");
  });

  it("computes the same (each thread only ever touched its own element)", () => {
    const f = lowerStages(matmulGpu().func, TARGETS.sm_90).find((s) => s.name === "compact_local")!.func;
    // Before the barriers pass, shared-memory tiles race; run the full pipeline from here instead.
    const rest = lowerStages(f, TARGETS.sm_90).at(-1)!.func;
    expectDeviceMatches(matmulRef(), rest, { m: 9, n: 10, k: 11 }, { tol: 1e-6 });
  });

  it("leaves a local buffer alone when one access indexes it otherwise", () => {
    // Only the init loops are bound: the compute loops index acc by serial loop variables.
    const s = Schedule.of(matmulTiled);
    s.bind("ty", "threadIdx.y");
    s.bind("tx", "threadIdx.x");
    const f = lowerStages(s.func, TARGETS.sm_90, "thread_guards").at(-1)!.func;
    expect(printFunc(compactLocalPass(f))).toContain("const acc = local(f32, [8, 8]);");
  });
});
