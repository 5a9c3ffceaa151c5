import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { constant, forLoop, store, buffer, variable } from "../../lower/ir/build.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { MAX_UNROLL, unrollPass } from "../../lower/passes/unroll.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { expectDeviceMatches } from "./helpers.ts";
import { polyEval } from "./kernels.ts";

function unrolledPoly(): PrimFunc {
  const s = Schedule.of(polyEval);
  s.unroll("p");
  return s.func;
}

describe("unroll", () => {
  it("expands constant loops, with fresh bindings in each copy (golden)", () => {
    const f = lowerStages(unrolledPoly(), TARGETS.cpu, "unroll").at(-1)!.func;
    expect(printFunc(f)).toMatchInlineSnapshot(`
      "// launch: grid [1, 1, 1], block [1, 1, 1], warp 1, shared 0 bytes
      function polyEval(x: Tensor<f32, [n]>, c: Tensor<f32, [4]>, y: Tensor<f32, [n]>) {
        for (let i = 0; i < n; i++) {
          const acc = local(f32, [1]);
          acc[0] = f32(0);
          const term = c[0] * x[i];
          acc[0] = acc[0] * x[i] + term;
          const term_1 = c[1] * x[i];
          acc[0] = acc[0] * x[i] + term_1;
          const term_2 = c[2] * x[i];
          acc[0] = acc[0] * x[i] + term_2;
          const term_3 = c[3] * x[i];
          acc[0] = acc[0] * x[i] + term_3;
          y[i] = acc[0];
        }
      }
      "
    `);
  });

  it("computes the same as the plain kernel", () => {
    expectDeviceMatches(lowerKernel(polyEval), lowerToDevice(unrolledPoly(), TARGETS.cpu), { n: 7 });
  });

  it("turns loops too long to expand into serial loops with an unroll hint", () => {
    const a = buffer("a", "i32", [constant(MAX_UNROLL + 1, "i32")]);
    const v = variable("v");
    const f: PrimFunc = {
      kind: "func",
      name: "long",
      params: [{ kind: "buffer", buffer: a }],
      symbols: [],
      body: forLoop(v, constant(0), constant(MAX_UNROLL + 1), store(a, [v], v), "unrolled"),
      attrs: {},
    };
    expect(printFunc(unrollPass(f))).toContain("for (let v = 0; v < 257; v++) { // unroll=true");
  });
});
