import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { binary, constant, forLoop, load, store, buffer, variable, call } from "../../lower/ir/build.ts";
import type { For, PrimFunc } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { classifyVectorAccess, divisibleBy, vectorizePass } from "../../lower/passes/vectorize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { walk } from "../../lower/ir/transform.ts";
import { expectDeviceMatches } from "./helpers.ts";
import { scaleRows, scaleWide } from "./kernels.ts";

function wide(): PrimFunc {
  const s = Schedule.of(scaleWide);
  s.bind("i", "blockIdx.x");
  const [j0, j1] = s.split("j", [null, 4]);
  s.bind(j0!, "threadIdx.x");
  s.vectorize(j1!);
  return s.func;
}

const vectorLoops = (f: PrimFunc): For[] => {
  const out: For[] = [];
  walk(f.body, (n) => {
    if (n.kind === "for" && n.forKind === "vectorized") out.push(n);
  });
  return out;
};

describe("vectorize", () => {
  it("keeps a vectorized loop in canonical form: base + lane (golden)", () => {
    const f = lowerStages(wide(), TARGETS.sm_90, "vectorize").at(-1)!.func;
    expect(printFunc(f)).toMatchInlineSnapshot(`
      "// launch: grid [m, 1, 1], block [4, 1, 1], warp 32, shared 0 bytes
      function scaleWide(x: Tensor<f32, [m, 16]>, b: Tensor<f32, [m]>, y: Tensor<f32, [m, 16]>) {
        const i = block_id(0);
        const j_0 = thread_id(0);
        for (let j_1 = 0; j_1 < 4; j_1++) { // vectorized
          y[i * 16 + j_0 * 4 + j_1] = x[i * 16 + j_0 * 4 + j_1] * f32(3) + b[i];
        }
      }
      "
    `);
    const [loop] = vectorLoops(f);
    const st = loop!.body;
    if (st.kind !== "store") throw new Error("expected a store");
    const y = classifyVectorAccess(st.indices[0]!, loop!.loopVar, 4);
    expect(y.kind).toBe("contiguous");
    expect(y.kind === "contiguous" && y.aligned).toBe(true); // i * 16 + j_0 * 4: 16-byte aligned
    const bLoad = st.value.kind === "binary" ? st.value.b : undefined;
    expect(bLoad?.kind === "load" && classifyVectorAccess(bLoad.indices[0]!, loop!.loopVar, 4).kind).toBe(
      "uniform",
    );
  });

  it("computes the same as the plain kernel", () => {
    expectDeviceMatches(lowerKernel(scaleWide), lowerToDevice(wide(), TARGETS.sm_90), { m: 5 });
  });

  it("classifies accesses: contiguous (aligned or not), uniform, gather", () => {
    const v = variable("v");
    const t = variable("t");
    const c = (x: number) => constant(x, "i32");
    expect(classifyVectorAccess(binary("+", binary("*", t, c(8)), v), v, 4)).toMatchObject({
      kind: "contiguous",
      aligned: true,
    });
    expect(classifyVectorAccess(binary("+", binary("+", binary("*", t, c(8)), c(1)), v), v, 4)).toMatchObject(
      { kind: "contiguous", aligned: false },
    );
    expect(classifyVectorAccess(binary("*", t, c(4)), v, 4)).toEqual({ kind: "uniform" });
    expect(classifyVectorAccess(binary("*", v, c(2)), v, 4)).toEqual({ kind: "gather" });
    expect(classifyVectorAccess(binary("floormod", v, c(2)), v, 4)).toEqual({ kind: "gather" });
    expect(divisibleBy(binary("+", binary("*", call("thread_id", [c(0)]), c(8)), c(4)), 4)).toBe(true);
  });

  it("hoists a guard free of the lane out of the loop, so it stays vectorized (golden)", () => {
    // 13 runs of 4 over 8 threads: the split of the runs guards j_0_0 * 8 + j_0_1 < 13.
    const s = new Schedule(specialize(lowerKernel(scaleRows), { n: 52 }));
    s.bind("i", "blockIdx.y");
    const [runs, lanes] = s.split("j", [null, 4]);
    const [bo, ti] = s.split(runs!, [null, 8]);
    s.bind(bo!, "blockIdx.x");
    s.bind(ti!, "threadIdx.x");
    s.vectorize(lanes!);
    const f = s.func;
    const staged = lowerStages(f, TARGETS.sm_90, "vectorize").at(-1)!.func;
    expect(printFunc(staged)).toContain(`if (j_0_0 * 8 + j_0_1 < 13) {
    for (let j_1 = 0; j_1 < 4; j_1++) { // vectorized`);
    expectDeviceMatches(lowerKernel(scaleRows), lowerToDevice(f, TARGETS.sm_90), { m: 3, n: 52 });
  });

  it("demotes loops a renderer could not vectorize: tail guards, dependent lanes, odd lane counts", () => {
    // Split's tail guard sits inside the vector loop: demoted to unrolled, then expanded.
    const s = Schedule.of(scaleRows);
    s.bind("i", "blockIdx.x");
    const [, ji] = s.split("j", [null, 4]);
    s.vectorize(ji!);
    const staged = lowerStages(s.func, TARGETS.sm_90);
    expect(printFunc(staged.find((x) => x.name === "vectorize")!.func)).toContain("// unrolled");
    expect(vectorLoops(staged.at(-1)!.func)).toHaveLength(0);
    expectDeviceMatches(lowerKernel(scaleRows), staged.at(-1)!.func, { m: 3, n: 11 });
    // Hand-built: lane v reads what lane v + 1 writes; and a 3-lane loop.
    const a = buffer("a", "f32", [constant(8, "i32")]);
    const v = variable("v");
    const shift = forLoop(
      v,
      constant(0, "i32"),
      constant(4, "i32"),
      store(a, [v], load(a, [binary("+", v, constant(1, "i32"))])),
      "vectorized",
    );
    const u = variable("u");
    const three = forLoop(
      u,
      constant(0, "i32"),
      constant(3, "i32"),
      store(a, [u], constant(1, "f32")),
      "vectorized",
    );
    const f: PrimFunc = {
      kind: "func",
      name: "h",
      params: [{ kind: "buffer", buffer: a }],
      symbols: [],
      body: { kind: "seq", body: [shift, three] },
      attrs: {},
    };
    expect(vectorLoops(vectorizePass(f))).toHaveLength(0);
    expect(printFunc(vectorizePass(f)).match(/\/\/ unrolled/g)).toHaveLength(2);
  });
});
