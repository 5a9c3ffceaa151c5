import { describe, expect, it } from "vitest";
import { kernel, f32, i32, max, type Tensor, type Sym } from "../../dsl/index.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { Schedule, replay, traceFromJson, traceToJson } from "../../lower/schedule/index.ts";
import { rmsNormRows } from "../passes/kernels.ts";
import { expectSameResults } from "../helpers/random.ts";

/** Integer row sums straight into a parameter: exact comparisons. */
const rowSum = kernel(function rowSum(x: Tensor<i32, [Sym<"m">, Sym<"n">]>, y: Tensor<i32, [Sym<"m">]>) {
  for (let i = 0; i < x.shape[0]; i++) {
    y[i] = 0;
    for (let k = 0; k < x.shape[1]; k++) y[i] += x[i][k] * 3;
  }
});

/** Row maxima through a local accumulator. */
const rowMax = kernel(function rowMax(x: Tensor<i32, [Sym<"m">, 13]>, y: Tensor<i32, [Sym<"m">]>) {
  for (let i = 0; i < x.shape[0]; i++) {
    let best = i32(-1000);
    for (let k = 0; k < 13; k++) best = max(best, x[i][k]);
    y[i] = best;
  }
});

/** Column sums: the reduction loop is outside the spatial one. */
const colSum = kernel(function colSum(x: Tensor<i32, [Sym<"m">, 6]>, y: Tensor<i32, [6]>) {
  for (let j = 0; j < 6; j++) y[j] = 0;
  for (let k = 0; k < x.shape[0]; k++) for (let j = 0; j < 6; j++) y[j] += x[k][j];
});

/** Not reductions: a running difference, and a scan. */
const notReductions = kernel(function notReductions(
  x: Tensor<f32, [9]>,
  y: Tensor<f32, [1]>,
  z: Tensor<f32, [9]>,
) {
  let d = f32(0);
  for (let k = 0; k < 9; k++) d = d - x[k];
  y[0] = d;
  for (let k = 0; k < 9; k++) z[k] = x[k] * 2;
});

describe("rfactor", () => {
  it("factors integer reductions exactly (params, locals, max)", () => {
    for (const [k, loop, syms] of [
      [rowSum, "k", { m: 5, n: 23 }],
      [rowMax, "k", { m: 7 }],
    ] as const) {
      const s = Schedule.of(k);
      const [, inner] = s.split(loop, [null, 4]);
      expect(s.rfactor(inner!)).toMatch(/_rf$/);
      expectSameResults(s.original, s.func, syms);
    }
  });

  it("factors an outer reduction loop with a spatial loop inside it", () => {
    const s = Schedule.of(colSum);
    const [ko] = s.split("k", [3, null]);
    s.rfactor(ko!);
    expectSameResults(s.original, s.func, { m: 17 });
    // The rf buffer is indexed by the factored loop and the spatial loop inside the nest.
    expect(printFunc(s.func)).toContain("const y_rf = local(i32, [3, 6]);");
  });

  it("factors a float reduction (summation order changes: tolerance)", () => {
    const s = Schedule.of(rmsNormRows);
    const [, ki] = s.split("k", [null, 8]);
    s.rfactor(ki!);
    expectSameResults(s.original, s.func, { m: 3, n: 29 }, { tol: 1e-5, scalars: { eps: 0.01 } });
  });

  it("prints the rf block and the write-back (golden), and decomposes the rf init", () => {
    const s = Schedule.of(rowSum);
    const [ko, ki] = s.split("k", [null, 4]);
    const rf = s.rfactor(ki!);
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function rowSum(x: Tensor<i32, [m, n]>, y: Tensor<i32, [m]>) {
        for (let i = 0; i < m; i++) {
          block "y" {
            y[i] = 0;
          }
          const y_rf = local(i32, [4]);
          for (let k_0 = 0; k_0 < floordiv(n + 3, 4); k_0++) {
            for (let k_1 = 0; k_1 < 4; k_1++) {
              block "y_1_rf" {
                if (k_0 == 0) {
                  y_rf[k_1] = 0;
                }
                if (k_0 * 4 + k_1 < n) {
                  y_rf[k_1] = y_rf[k_1] + x[i][k_0 * 4 + k_1] * 3;
                }
              }
            }
          }
          for (let k_1_1 = 0; k_1_1 < 4; k_1_1++) {
            block "y_1" {
              y[i] = y[i] + y_rf[k_1_1];
            }
          }
        }
      }
      "
    `);
    const init = s.decomposeReduction(rf, ko!);
    expect(init).toBe("y_1_rf_init");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function rowSum(x: Tensor<i32, [m, n]>, y: Tensor<i32, [m]>) {
        for (let i = 0; i < m; i++) {
          block "y" {
            y[i] = 0;
          }
          const y_rf = local(i32, [4]);
          for (let k_1_init = 0; k_1_init < 4; k_1_init++) {
            block "y_1_rf_init" {
              y_rf[k_1_init] = 0;
            }
          }
          for (let k_0 = 0; k_0 < floordiv(n + 3, 4); k_0++) {
            for (let k_1 = 0; k_1 < 4; k_1++) {
              block "y_1_rf" {
                if (k_0 * 4 + k_1 < n) {
                  y_rf[k_1] = y_rf[k_1] + x[i][k_0 * 4 + k_1] * 3;
                }
              }
            }
          }
          for (let k_1_1 = 0; k_1_1 < 4; k_1_1++) {
            block "y_1" {
              y[i] = y[i] + y_rf[k_1_1];
            }
          }
        }
      }
      "
    `);
    expectSameResults(s.original, s.func, { m: 4, n: 11 });
    expectSameResults(s.original, s.func, { m: 2, n: 2 }, { seed: 3 });
  });

  it("refuses spatial loops, non-reductions, and loops holding several blocks", () => {
    const s = Schedule.of(rowSum);
    expect(() => s.rfactor("i")).toThrow(/holds 2 blocks/);
    const c = Schedule.of(colSum);
    expect(() => c.rfactor("j_1")).toThrow(
      /loop j_1 indexes y\[j_1\]: it is a spatial loop of block "y_1", not a reduction loop/,
    );
    const n = Schedule.of(notReductions);
    expect(() => n.rfactor("k")).toThrow(/combines with -, which is not associative/);
    expect(() => n.rfactor("k_1")).toThrow(
      /z\[k_1\] = x\[k_1\] \* f32\(2\) does not read z: it is not an update/,
    );
  });

  it("round-trips its trace", () => {
    const s = Schedule.of(rowSum);
    const [ko, ki] = s.split("k", [null, 4]);
    s.decomposeReduction(s.rfactor(ki!), ko!);
    const again = replay(lowerKernel(rowSum), traceFromJson(traceToJson(s.trace)));
    expect(printFunc(again.func)).toBe(printFunc(s.func));
  });
});

describe("decomposeReduction", () => {
  it("hoists the init out of several loops of a self-initialising block", () => {
    const s = Schedule.of(colSum);
    const [ko, ki] = s.split("k", [null, 4]);
    const rf = s.rfactor(ki!);
    // The rf block's init runs when ko == 0: decompose at ko (init loops over ki and j).
    s.decomposeReduction(rf, ko!);
    expect(printFunc(s.func)).toMatch(
      /for \(let k_1_init = 0; k_1_init < 4; k_1_init\+\+\) \{\n\s+for \(let j_1_init = 0; j_1_init < 6; j_1_init\+\+\) \{/,
    );
    expectSameResults(s.original, s.func, { m: 13 });
  });

  it("refuses blocks that do not initialise themselves and loops that do not fit", () => {
    const s = Schedule.of(rowSum);
    expect(() => s.decomposeReduction("y_1", "k")).toThrow(/does not initialise itself/);
    const [ko, ki] = s.split("k", [null, 4]);
    const rf = s.rfactor(ki!);
    // ki lies inside ko, the loop whose first iteration the init waits for.
    expect(() => s.decomposeReduction(rf, ki!)).toThrow(
      /the init runs on the first iteration of loop k_0, which encloses k_1: decompose at k_0/,
    );
    expect(() => s.decomposeReduction(rf, "k_1_1")).toThrow(/does not enclose block/);
    expect(() => s.decomposeReduction(rf, "nope")).toThrow(/no loop named nope/);
    void ko;
  });
});
