/** split, fuse and reorder: same results on random inputs, golden IR, refusals, trace round trips. */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { For } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
// The schedule modules this file tests, imported directly so other families' work cannot break it.
import "../../lower/schedule/loop_transformation.ts";
import "../../lower/schedule/for_kind.ts";
import { Schedule } from "../../lower/schedule/schedule.ts";
import { ScheduleError } from "../../lower/schedule/errors.ts";
import { loopPath, replaceStmt } from "../../lower/schedule/state.ts";
import { expectSameResults } from "../helpers/random.ts";
import * as K from "./loop_kernels.ts";
import { expectTraceRoundTrip, expectValid } from "./roundtrip.ts";

const refuses = (f: () => unknown, why: RegExp): void => {
  expect(f).toThrow(ScheduleError);
  expect(f).toThrow(why);
};

describe("split", () => {
  test("keeps results on several kernels, with and without tails", () => {
    const mm = Schedule.of(K.matmulInt);
    expect(mm.split("i", [null, 4])).toEqual(["i_0", "i_1"]); // 7 = 2 * 4 - 1: a tail
    expect(mm.split("j", [3, 3])).toEqual(["j_0", "j_1"]); // exact
    expect(mm.split("k", [1, 5, null])).toEqual(["k_0", "k_1", "k_2"]);
    expectSameResults(mm.original, mm.func, {});
    expectValid(mm);
    expectTraceRoundTrip(mm);

    const sym = Schedule.of(K.matmulSym);
    sym.split("k", [null, 3]);
    sym.split("i", [2, null]);
    for (const symbols of [
      { m: 5, p: 7, n: 3 },
      { m: 4, p: 6, n: 1 },
      { m: 1, p: 1, n: 2 },
    ])
      expectSameResults(sym.original, sym.func, symbols); // the order of k is kept: exact in f32
    expectTraceRoundTrip(sym);

    const sm = Schedule.of(E.softmax);
    // softmax already has a loop named j_1, so the new inner loop gets a fresh name.
    expect(sm.split("j", [null, 4])).toEqual(["j_0", "j_1_1"]);
    sm.split("i", [null, 2]);
    expectSameResults(sm.original, sm.func, { m: 3, n: 9 });
    expectValid(sm);
    expectTraceRoundTrip(sm);

    const rms = Schedule.of(E.rmsNorm);
    rms.split("k", [null, 16]);
    expectSameResults(rms.original, rms.func, { n: 3 }, { scalars: { eps: 1e-5 } });

    const off = Schedule.of(K.offsets); // loops starting above 0
    off.split("j", [null, 2]);
    off.split("i", [null, 2]);
    expectSameResults(off.original, off.func, {});
    expectTraceRoundTrip(off);
  });

  test("golden: a tail guard on the innermost body keeps the nest perfect", () => {
    const s = Schedule.of(K.matmulInt);
    s.split("j", [null, 4]);
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmulInt(a: Tensor<i32, [7, 5]>, b: Tensor<i32, [5, 9]>, c: Tensor<i32, [7, 9]>) {
        for (let i = 0; i < 7; i++) {
          for (let j_0 = 0; j_0 < 3; j_0++) {
            for (let j_1 = 0; j_1 < 4; j_1++) {
              for (let k = 0; k < 5; k++) {
                if (j_0 * 4 + j_1 < 9) {
                  block "c" {
                    c[i][j_0 * 4 + j_1] = c[i][j_0 * 4 + j_1] + a[i][k] * b[k][j_0 * 4 + j_1];
                  }
                }
              }
            }
          }
        }
      }
      "
    `);
  });

  test("golden: a symbolic extent infers the outer factor by ceiling division", () => {
    const s = Schedule.of(E.addBroadcast);
    s.split("j", [null, 8]);
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function addBroadcast(x: Tensor<f32, [m, n]>, b: Tensor<f32, [n]>, y: Tensor<f32, [m, n]>) {
        for (let i = 0; i < m; i++) {
          for (let j_0 = 0; j_0 < floordiv(n + 7, 8); j_0++) {
            for (let j_1 = 0; j_1 < 8; j_1++) {
              if (j_0 * 8 + j_1 < n) {
                block "y" {
                  y[i][j_0 * 8 + j_1] = x[i][j_0 * 8 + j_1] + b[j_0 * 8 + j_1];
                }
              }
            }
          }
        }
      }
      "
    `);
    expectSameResults(s.original, s.func, { m: 2, n: 13 });
  });

  test("refusals", () => {
    const s = Schedule.of(K.matmulInt);
    refuses(() => s.split("i", [0, null]), /split i: factor 0 is not a positive integer/);
    refuses(() => s.split("i", [-2, null]), /factor -2 is not a positive integer/);
    refuses(() => s.split("i", [1.5, null]), /factor 1.5 is not a positive integer/);
    refuses(() => s.split("i", [null, null]), /at most one factor may be null/);
    refuses(() => s.split("i", [7]), /at least two factors/);
    refuses(() => s.split("i", [2, 3]), /the factors multiply to 6, less than the extent 7/);
    refuses(() => s.split("nope", [null, 2]), /no loop named nope in matmulInt/);
    s.bind("i", "blockIdx.x");
    refuses(() => s.split("i", [null, 2]), /loop i is already bound to blockIdx.x/);
    const sym = Schedule.of(K.matmulSym);
    refuses(() => sym.split("k", [2, 4]), /extent p is symbolic.*give one factor as null/);
    expect(s.trace.steps.map((st) => st.op)).toEqual(["bind"]); // refusals are not recorded
  });
});

describe("fuse", () => {
  test("keeps results on several kernels", () => {
    const s3 = Schedule.of(K.scale3);
    expect(s3.fuse("i", "j", "k")).toBe("i_j_k_fused");
    expectSameResults(s3.original, s3.func, {});
    expectValid(s3);
    expectTraceRoundTrip(s3);

    const sym = Schedule.of(K.matmulSym);
    const f = sym.fuse("i", "j");
    sym.split(f, [null, 4]);
    expectSameResults(sym.original, sym.func, { m: 3, p: 4, n: 5 });
    expectTraceRoundTrip(sym);

    const add = Schedule.of(E.addBroadcast);
    add.fuse("i", "j");
    expectSameResults(add.original, add.func, { m: 3, n: 7 });

    const off = Schedule.of(K.offsets); // mins 1 and 2 are added back when the indices are recovered
    off.fuse("i", "j");
    expectSameResults(off.original, off.func, {});
    expectValid(off);
  });

  test("golden: floordiv and floormod recover the fused variables", () => {
    const s = Schedule.of(K.offsets);
    s.fuse("i", "j");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function offsets(x: Tensor<i32, [5, 8]>, y: Tensor<i32, [5, 8]>) {
        for (let i_j_fused = 0; i_j_fused < 15; i_j_fused++) {
          block "y" {
            y[1 + floordiv(i_j_fused, 5)][2 + floormod(i_j_fused, 5)] = x[1 + floordiv(i_j_fused, 5)][2 + floormod(i_j_fused, 5)] + (2 + floormod(i_j_fused, 5));
          }
        }
      }
      "
    `);
  });

  test("refusals", () => {
    const mm = Schedule.of(K.matmulInt);
    refuses(() => mm.fuse("i", "k"), /loop j stands between i and k: fuse takes adjacent nested loops/);
    refuses(
      () => mm.fuse("j", "i"),
      /i is not directly inside j: fuse takes adjacent nested loops, outermost first/,
    );
    refuses(() => mm.fuse("i", "i"), /loop i is given twice/);
    refuses(() => mm.fuse("i"), /at least two loops/);
    const f16 = Schedule.of(E.matmulF16);
    refuses(() => f16.fuse("j", "k"), /k is not the only statement in j \(its body is a allocate\)/);
    refuses(
      () => Schedule.of(K.triangle).fuse("i", "j"),
      /the range of j depends on i: the nest is not rectangular/,
    );
    mm.parallel("j");
    refuses(() => mm.fuse("i", "j"), /loop j is already parallel/);
  });
});

describe("reorder", () => {
  test("keeps results on several kernels", () => {
    const mm = Schedule.of(K.matmulInt);
    mm.reorder("k", "i", "j");
    expectSameResults(mm.original, mm.func, {});
    expectValid(mm);
    expectTraceRoundTrip(mm);

    // Each c[i][j] still sums over k in order, so even f32 results match exactly.
    const sym = Schedule.of(K.matmulSym);
    const [i0, i1] = sym.split("i", [null, 2]);
    const [j0, j1] = sym.split("j", [null, 2]);
    sym.reorder(i0!, j0!, "k", i1!, j1!);
    expectSameResults(sym.original, sym.func, { m: 5, p: 3, n: 7 });
    expectTraceRoundTrip(sym);

    // Dependence (1, 0) stays lexicographically positive when swapped to (0, 1).
    const scan = Schedule.of(K.rowScan);
    scan.reorder("j", "i");
    expectSameResults(scan.original, scan.func, {});

    // y reads t where the previous j wrote it; i is pinned by the shared row index.
    const two = Schedule.of(K.twoStage);
    two.reorder("j", "i");
    expectSameResults(two.original, two.func, {});
    expectTraceRoundTrip(two);
  });

  test("golden: a tiled matmul", () => {
    const s = Schedule.of(K.matmulInt);
    s.split("i", [null, 4]);
    s.reorder("k", "i_1", "j");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmulInt(a: Tensor<i32, [7, 5]>, b: Tensor<i32, [5, 9]>, c: Tensor<i32, [7, 9]>) {
        for (let i_0 = 0; i_0 < 2; i_0++) {
          for (let k = 0; k < 5; k++) {
            for (let i_1 = 0; i_1 < 4; i_1++) {
              for (let j = 0; j < 9; j++) {
                if (i_0 * 4 + i_1 < 7) {
                  block "c" {
                    c[i_0 * 4 + i_1][j] = c[i_0 * 4 + i_1][j] + a[i_0 * 4 + i_1][k] * b[k][j];
                  }
                }
              }
            }
          }
        }
      }
      "
    `);
  });

  test("refuses a reorder that would change values, which forcing it shows", () => {
    const s = Schedule.of(K.diagScan);
    refuses(
      () => s.reorder("j", "i"),
      /moving j outside i would change the values computed: y\[i \+ 1\]\[j\] \(block "y"\) and y\[i\]\[j \+ 1\] \(block "y"\) touch the same elements/,
    );
    // Build the swapped nest by hand: it indeed computes something else.
    const f = s.func;
    const i = loopPath(f, "i", "test").loop;
    const j = i.body as For;
    const swapped = replaceStmt(f, i, { ...j, body: { ...i, body: j.body } });
    expect(() => expectSameResults(f, swapped, {})).toThrow();

    refuses(
      () => Schedule.of(K.twoStageSkew).reorder("j", "i"),
      /t\[i \+ 1\]\[j\] \(block "t"\) and t\[i\]\[j \+ 1\] \(block "y"\)/,
    );
  });

  test("refusals", () => {
    refuses(
      () => Schedule.of(K.sum2d).reorder("j", "i"),
      /s\[0\] \(block "s"\) writes the same elements .* both are reduction loops for s, which would accumulate in another order/,
    );
    refuses(
      () => Schedule.of(K.triangle).reorder("j", "i"),
      /the range of j depends on i, so j cannot move outside it/,
    );
    refuses(() => Schedule.of(E.softmax).reorder("j", "j_1"), /loops j and j_1 are not in one nest/);
    refuses(
      () => Schedule.of(E.matmulF16).reorder("k", "i"),
      /not one perfect nest: a allocate statement stands between j and k/,
    );
    refuses(() => Schedule.of(K.matmulInt).reorder("i", "k", "i"), /loop i is given twice/);
    refuses(() => Schedule.of(K.matmulInt).reorder("i"), /at least two loops/);
    const v = Schedule.of(K.scale3);
    v.vectorize("k");
    refuses(() => v.reorder("k", "j"), /loop k is vectorized and must stay innermost/);
  });
});
