import { describe, expect, test } from "vitest";
import * as K from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { retype, specialize } from "../../lower/ir/specialize.ts";
import { assertValid } from "../../lower/ir/verify.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { toNumbers, zeros } from "../../dsl/ndarray.ts";
import { randomArray, rng } from "../helpers/random.ts";

describe("specialize and retype", () => {
  test("constant dimensions replace symbols and results are unchanged", () => {
    const f = lowerKernel(K.softmax);
    const g = specialize(f, { n: 7 });
    assertValid(g);
    expect(g.symbols.map((s) => s.name)).toEqual(["m"]);
    expect(printFunc(g)).toContain("j < 7");
    const x = randomArray("f32", [3, 7], rng(5));
    const y1 = zeros("f32", [3, 7]);
    const y2 = zeros("f32", [3, 7]);
    cpuKernel(f)({ x, y: y1 });
    cpuKernel(g)({ x, y: y2 });
    expect(Array.from(y2.data)).toEqual(Array.from(y1.data));
    expect(() => cpuKernel(g)({ x: randomArray("f32", [3, 8], rng(1)), y: zeros("f32", [3, 8]) })).toThrow(
      /wants 7/,
    );
    expect(() => specialize(f, { q: 3 })).toThrow(/no symbolic dimension q/);
  });

  test("an f16 kernel retyped to f32 computes in f32", () => {
    const f = retype(lowerKernel(K.rmsNorm), "f16", "f32");
    assertValid(f);
    expect(printFunc(f).split("\n").slice(1).join("\n")).not.toContain("f16");
    const d = K.NORM_DIM;
    const r = rng(9);
    const x = randomArray("f32", [4, d], r);
    const w = randomArray("f32", [d], r);
    const y = zeros("f32", [4, d]);
    cpuKernel(f)({ x, w, y, eps: 1e-5 });
    const got = toNumbers(y);
    for (let i = 0; i < 4; i++) {
      let ss = 0;
      for (let k = 0; k < d; k++) ss += x.data[i * d + k]! ** 2;
      const rs = 1 / Math.sqrt(ss / d + 1e-5);
      for (let k = 0; k < d; k++) expect(got[i * d + k]).toBeCloseTo(x.data[i * d + k]! * rs * w.data[k]!, 5);
    }
  });
});
