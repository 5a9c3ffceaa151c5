import { describe, expect, it } from "vitest";
import {
  binary,
  constant,
  forLoop,
  ifThen,
  letStmt,
  seq,
  store,
  buffer,
  variable,
  unary,
} from "../../lower/ir/build.ts";
import type { Expr, PrimFunc, Stmt } from "../../lower/ir/nodes.ts";
import { printExpr, printFunc } from "../../lower/ir/printer.ts";
import { threadIndex } from "../../lower/passes/device_ops.ts";
import { lowerStages } from "../../lower/passes/pipeline.ts";
import { Simplifier, simplifyPass } from "../../lower/passes/simplify.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { deviceError, matmulGpu, matmulRef } from "./helpers.ts";

const c = (x: number) => constant(x, "i32");
const launch = {
  grid: [c(1), c(1), c(1)] as [Expr, Expr, Expr],
  block: [64, 1, 1] as [number, number, number],
  warpSize: 32,
  sharedBytes: 0,
};

describe("simplify", () => {
  it("folds integers, identities, and floordiv/floormod and comparisons by value ranges", () => {
    const s = new Simplifier(launch);
    const tx = threadIndex(0);
    const k = variable("k");
    s.setRange(k, { lo: 0, hi: 7 });
    const show = (e: Expr) => printExpr(s.expr(e));
    expect(show(binary("+", binary("*", c(3), c(4)), c(1)))).toBe("13");
    expect(show(binary("floordiv", binary("+", binary("*", tx, c(8)), k), c(8)))).toBe("thread_id(0)");
    expect(show(binary("floormod", binary("+", binary("*", tx, c(8)), k), c(8)))).toBe("k");
    // A truncating remainder as floormod where the dividend cannot be negative, and not where it can.
    expect(show(binary("%", binary("+", binary("*", tx, c(8)), k), c(8)))).toBe("k");
    expect(show(binary("%", k, c(1)))).toBe("0");
    const m = variable("m");
    expect(show(binary("%", m, c(1)))).toBe("m % 1");
    expect(show(binary("floordiv", binary("floordiv", tx, c(4)), c(2)))).toBe("floordiv(thread_id(0), 8)");
    expect(show(binary("+", binary("+", binary("*", k, c(1)), c(3)), c(4)))).toBe("k + 7");
    expect(show(binary("-", binary("+", k, c(0)), c(0)))).toBe("k");
    expect(show(binary("<", tx, c(64)))).toBe("true");
    expect(show(binary(">=", k, c(8)))).toBe("false");
    expect(show(binary("<", tx, c(32)))).toBe("thread_id(0) < 32");
    expect(show(binary("min", k, c(9)))).toBe("k");
    expect(show(binary("*", variable("x", "f32"), constant(1, "f32")))).toBe("x");
    // x + 0.0 is not x for x = -0: floats are left alone.
    expect(show(binary("+", variable("x", "f32"), constant(0, "f32")))).toBe("x + f32(0)");
  });

  it("removes dead code: if (true), empty and zero-trip loops, single iterations, unused lets (golden)", () => {
    const a = buffer("a", "i32", [c(8)]);
    const i = variable("i");
    const j = variable("j");
    const t = variable("t");
    const body: Stmt = seq([
      ifThen(binary("<", threadIndex(0), c(64)), store(a, [c(0)], c(1))),
      ifThen(unary("not", constant(1, "bool")), store(a, [c(1)], c(2))),
      forLoop(i, c(0), c(0), store(a, [i], c(3))),
      forLoop(j, c(2), c(1), store(a, [binary("+", j, c(1))], j)),
      letStmt(t, binary("*", threadIndex(0), c(2)), store(a, [c(4)], c(5))),
      forLoop(variable("e"), c(0), c(4), seq([])),
    ]);
    const f: PrimFunc = {
      kind: "func",
      name: "dead",
      params: [{ kind: "buffer", buffer: a }],
      symbols: [],
      body,
      attrs: {},
      launch,
    };
    expect(printFunc(simplifyPass(f))).toMatchInlineSnapshot(`
      "// launch: grid [1, 1, 1], block [64, 1, 1], warp 32, shared 0 bytes
      function dead(a: Tensor<i32, [8]>) {
        a[0] = 1;
        a[3] = 2;
        a[4] = 5;
      }
      "
    `);
  });

  it("keeps results the same (the lowered matmul before and after)", () => {
    const stages = lowerStages(matmulGpu().func, TARGETS.gfx1100);
    for (const name of ["unroll", "simplify"])
      expect(
        deviceError(matmulRef(), stages.find((s) => s.name === name)!.func, { m: 7, n: 9, k: 10 }),
      ).toBeLessThan(1e-6);
  });
});
