/** bind, vectorize, unroll, parallel, annotate: results, golden IR, refusals, trace round trips. */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import type { For } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
// The schedule modules this file tests, imported directly so other families' work cannot break it.
import "../../lower/schedule/loop_transformation.ts";
import "../../lower/schedule/for_kind.ts";
import { CROSS_THREAD_REDUCTION } from "../../lower/schedule/analysis.ts";
import { ScheduleError } from "../../lower/schedule/errors.ts";
import { Schedule } from "../../lower/schedule/schedule.ts";
import { loopPath } from "../../lower/schedule/state.ts";
import { expectSameResults } from "../helpers/random.ts";
import * as K from "./loop_kernels.ts";
import { expectTraceRoundTrip, expectValid } from "./roundtrip.ts";

const refuses = (f: () => unknown, why: RegExp): void => {
  expect(f).toThrow(ScheduleError);
  expect(f).toThrow(why);
};
const loop = (s: Schedule, name: string): For => loopPath(s.func, name, "test").loop;

describe("loopCopies", () => {
  test("names a loop and its copies (name_1, name_2, ...) in program order", () => {
    const sm = Schedule.of(E.softmax);
    expect(sm.loopCopies("j")).toEqual(["j", "j_1", "j_2"]);
    expect(sm.loopCopies("i")).toEqual(["i"]);
    expect(sm.loopCopies("k")).toEqual([]);
    // A primitive applied to every copy: all three bound to the lanes, results kept.
    sm.bind("i", "blockIdx.x");
    for (const l of sm.loopCopies("j")) sm.bind(l, "threadIdx.x");
    expect(sm.loopCopies("j").map((l) => loop(sm, l).thread)).toEqual([
      "threadIdx.x",
      "threadIdx.x",
      "threadIdx.x",
    ]);
    expectSameResults(sm.original, sm.func, { m: 3, n: 7 });
  });
});

describe("bind", () => {
  test("keeps results and marks cross-thread reductions", () => {
    const mm = Schedule.of(K.matmulInt);
    const [i0, i1] = mm.split("i", [null, 4]);
    mm.bind(i0!, "blockIdx.x");
    mm.bind(i1!, "threadIdx.x");
    mm.bind("j", "threadIdx.y");
    expect(loop(mm, "j").annotations).toEqual({});
    expectSameResults(mm.original, mm.func, {});
    expectValid(mm);
    expectTraceRoundTrip(mm);

    const sm = Schedule.of(E.softmax);
    sm.bind("i", "blockIdx.x");
    sm.bind("j", "threadIdx.x"); // the max over a row: a reduction across threads
    sm.bind("j_1", "threadIdx.x"); // siblings may bind the same axis
    sm.bind("j_2", "threadIdx.x");
    expect(loop(sm, "j").annotations).toEqual({ [CROSS_THREAD_REDUCTION]: "m" });
    expect(loop(sm, "j_1").annotations).toEqual({ [CROSS_THREAD_REDUCTION]: "s" });
    expect(loop(sm, "j_2").annotations).toEqual({});
    expectSameResults(sm.original, sm.func, { m: 3, n: 7 });
    expectValid(sm);
    expectTraceRoundTrip(sm);

    const rms = Schedule.of(E.rmsNorm);
    rms.bind("i", "blockIdx.x");
    rms.bind("k", "threadIdx.x");
    rms.bind("k_1", "threadIdx.x");
    expectSameResults(rms.original, rms.func, { n: 3 }, { scalars: { eps: 1e-5 } });
    expectTraceRoundTrip(rms);

    // A local temporary is private to each thread: overwriting it in every iteration is no race
    // (parallel, below, refuses the same loop: on the CPU the iterations would share it).
    const tmp = Schedule.of(K.privateTemp);
    tmp.bind("i", "threadIdx.x");
    expect(loop(tmp, "i").annotations).toEqual({});
    expectSameResults(tmp.original, tmp.func, {});
  });

  test("golden: a loop starting at 1 is shifted to start at 0", () => {
    const s = Schedule.of(E.argmax);
    s.bind("i", "blockIdx.x");
    s.bind("j", "threadIdx.x");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function argmax(x: Tensor<f32, [m, n]>, out: Tensor<i32, [m]>) {
        for (let i = 0; i < m; i++) { // blockIdx.x
          const best = local(f32, [1]);
          block "best" {
            best[0] = x[i][0];
          }
          const at = local(i32, [1]);
          block "at" {
            at[0] = 0;
          }
          for (let j = 0; j < n - 1; j++) { // threadIdx.x, cross_thread_reduction="at,best"
            const better = x[i][j + 1] > best[0];
            block "at_1" {
              at[0] = select(better, j + 1, at[0]);
            }
            block "best_1" {
              best[0] = select(better, x[i][j + 1], best[0]);
            }
          }
          block "out" {
            out[i] = at[0];
          }
        }
      }
      "
    `);
    expectSameResults(s.original, s.func, { m: 3, n: 8 });
    expectTraceRoundTrip(s);
  });

  test("refusals", () => {
    refuses(
      () => Schedule.of(K.matmulInt).bind("i", "threadIdx.w"),
      /unknown thread axis "threadIdx.w"; use one of blockIdx.x/,
    );
    const s = Schedule.of(K.matmulInt);
    s.bind("i", "threadIdx.x");
    refuses(() => s.bind("i", "threadIdx.y"), /loop i is already bound to threadIdx.x/);
    refuses(
      () => s.bind("j", "threadIdx.x"),
      /loop j is inside loop i, already bound to threadIdx.x: an axis can be bound only once on any path/,
    );
    refuses(() => s.bind("k", "blockIdx.x"), /thread-block loops must enclose thread loops/);
    const t = Schedule.of(K.matmulInt);
    t.bind("j", "threadIdx.x");
    refuses(() => t.bind("i", "threadIdx.x"), /loop i is around loop j, already bound to threadIdx.x/);
    refuses(
      () => Schedule.of(E.sumAll).bind("i", "blockIdx.x"),
      /every iteration of i writes s\[0\] \(block "s_1"\): i carries a reduction into s; a reduction across thread blocks is not supported/,
    );
    refuses(() => Schedule.of(K.rowSum).bind("j", "blockIdx.y"), /j carries a reduction into y/);
    refuses(
      () => Schedule.of(K.lastWins).bind("i", "threadIdx.x"),
      /every iteration of i overwrites y\[0\].*which iteration writes last/,
    );
    refuses(
      () => Schedule.of(K.prefix).bind("i", "threadIdx.x"),
      /the threads of threadIdx.x would race: different iterations of i may touch the same element of y/,
    );
    refuses(
      () => Schedule.of(K.halvesOverlap).bind("i", "threadIdx.x"),
      /would race: different iterations of i may touch the same element of y: one writes y\[i\] .*another writes y\[i \+ 7\]/,
    );
  });

  test("bind: shifts and masks of a lane index pin the lane (pairs x >> 2, x & 3), and alone they do not", () => {
    const s = Schedule.of(K.laneLayout);
    s.bind("lane", "threadIdx.x");
    expectSameResults(s.original, s.func, {});
    refuses(() => Schedule.of(K.laneRowsOnly).bind("lane", "threadIdx.x"), /would race/);
    const tiles = Schedule.of(K.laneTiles);
    tiles.bind("t", "blockIdx.x");
    tiles.bind("lane", "threadIdx.x");
    expectSameResults(tiles.original, tiles.func, {});
  });

  test("bind: the range test proves y[i] and y[i' + 8] apart for i, i' < 8", () => {
    const s = Schedule.of(K.halves);
    s.bind("i", "threadIdx.x");
    expectSameResults(s.original, s.func, {});
  });
});

describe("vectorize", () => {
  test("keeps results on several kernels", () => {
    const add = Schedule.of(E.addBroadcast);
    const [, j1] = add.split("j", [null, 4]);
    add.vectorize(j1!);
    expectSameResults(add.original, add.func, { m: 3, n: 11 });
    expectValid(add);
    expectTraceRoundTrip(add);

    const mm = Schedule.of(K.matmulInt);
    mm.reorder("k", "j");
    mm.vectorize("j"); // b[k][j] and c[i][j] step by one along j; a[i][k] is the same for every lane
    expectSameResults(mm.original, mm.func, {});

    const s3 = Schedule.of(K.scale3);
    s3.vectorize("k");
    expectSameResults(s3.original, s3.func, {});
    expect(loop(s3, "k").forKind).toBe("vectorized");
  });

  test("golden", () => {
    const s = Schedule.of(K.offsets);
    s.vectorize("j");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function offsets(x: Tensor<i32, [5, 8]>, y: Tensor<i32, [5, 8]>) {
        for (let i = 1; i < 1 + 3; i++) {
          for (let j = 2; j < 2 + 5; j++) { // vectorized
            block "y" {
              y[i][j] = x[i][j] + j;
            }
          }
        }
      }
      "
    `);
  });

  test("refusals", () => {
    refuses(
      () => Schedule.of(E.addBroadcast).vectorize("j"),
      /loop j has a symbolic extent; split it with a constant inner factor/,
    );
    const wide = Schedule.of(E.addBroadcast);
    wide.split("j", [null, 32]);
    refuses(() => wide.vectorize("j_1"), /loop j_1 has 32 iterations, more than 16 lanes/);
    refuses(() => Schedule.of(K.matmulInt).vectorize("j"), /loop j is not innermost: loop k is inside it/);
    refuses(
      () => Schedule.of(K.evens).vectorize("i"),
      /vectorizing a non-unit stride access to x\[2 \* i\] \(block "y"\)/,
    );
    const tr = Schedule.of(E.transpose);
    tr.split("j", [null, 4]);
    refuses(() => tr.vectorize("j_1"), /vectorizing a non-unit stride access to y\[j_0 \* 4 \+ j_1\]\[i\]/);
    refuses(
      () => Schedule.of(K.sum2d).vectorize("j"),
      /every iteration of j writes s\[0\].*every lane would write the same element/,
    );
    refuses(
      () => Schedule.of(K.matmulInt).vectorize("k"),
      /vectorizing a non-unit stride access to b\[k\]\[j\]/,
    );
    refuses(
      () => Schedule.of(K.prefix).vectorize("i"),
      /the vector lanes would depend on each other: .*one writes y\[i \+ 1\]/,
    );
    const done = Schedule.of(K.scale3);
    done.vectorize("k");
    refuses(() => done.vectorize("k"), /loop k is already vectorized/);
  });
});

describe("unroll", () => {
  test("keeps results; golden", () => {
    const s = Schedule.of(K.matmulInt);
    const [, i1] = s.split("i", [null, 2]);
    s.unroll(i1!);
    s.unroll("k");
    expectSameResults(s.original, s.func, {});
    expectValid(s);
    expectTraceRoundTrip(s);
    const p = Schedule.of(K.prefix); // unrolling keeps the order: dependences do not matter
    p.unroll("i");
    expectSameResults(p.original, p.func, {});
    expect(printFunc(p.func)).toMatchInlineSnapshot(`
      "function prefix(x: Tensor<i32, [9]>, y: Tensor<i32, [10]>) {
        for (let i = 0; i < 9; i++) { // unrolled
          block "y" {
            y[i + 1] = y[i] + x[i];
          }
        }
      }
      "
    `);
  });

  test("refusals", () => {
    refuses(() => Schedule.of(E.addBroadcast).unroll("j"), /loop j has a symbolic extent/);
    const s = Schedule.of(K.matmulInt);
    s.parallel("i");
    refuses(() => s.unroll("i"), /loop i is already parallel/);
    refuses(() => s.unroll("q"), /no loop named q/);
  });
});

describe("parallel", () => {
  test("keeps results on several kernels", () => {
    const mm = Schedule.of(K.matmulInt);
    mm.parallel(mm.fuse("i", "j"));
    expectSameResults(mm.original, mm.func, {});
    expectValid(mm);
    expectTraceRoundTrip(mm);

    const s3 = Schedule.of(K.scale3); // three fused loops: nested floordiv/floormod indices
    const [outer] = s3.split(s3.fuse("i", "j", "k"), [null, 8]);
    s3.parallel(outer!);
    expectSameResults(s3.original, s3.func, {});

    const two = Schedule.of(K.twoStage); // rows of t are disjoint across i
    two.parallel("i");
    expectSameResults(two.original, two.func, {});

    const sm = Schedule.of(E.softmax); // m_1 and s are allocated inside i: private to an iteration
    sm.parallel("i");
    expectSameResults(sm.original, sm.func, { m: 4, n: 5 });
  });

  test("golden", () => {
    const s = Schedule.of(E.addBroadcast);
    s.parallel("i");
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function addBroadcast(x: Tensor<f32, [m, n]>, b: Tensor<f32, [n]>, y: Tensor<f32, [m, n]>) {
        for (let i = 0; i < m; i++) { // parallel
          for (let j = 0; j < n; j++) {
            block "y" {
              y[i][j] = x[i][j] + b[j];
            }
          }
        }
      }
      "
    `);
  });

  test("refusals", () => {
    refuses(
      () => Schedule.of(K.prefix).parallel("i"),
      /loop i carries a dependence: .*one writes y\[i \+ 1\] \(block "y"\), another reads y\[i\]/,
    );
    refuses(
      () => Schedule.of(K.rowSum).parallel("j"),
      /every iteration of j writes y\[i\] \(block "y"\): j carries a reduction into y/,
    );
    refuses(() => Schedule.of(K.sum2d).parallel("i"), /i carries a reduction into s/);
    refuses(
      () => Schedule.of(K.twoStage).parallel("j"),
      /one writes t\[i\]\[j \+ 1\] \(block "t"\), another reads t\[i\]\[j\] \(block "y"\)/,
    );
    // diagScan's j iterations within one i touch rows i and i + 1 only: parallel j is legal (the
    // range test sees the rows apart); i carries the dependence.
    const diag = Schedule.of(K.diagScan);
    diag.parallel("j");
    expectSameResults(diag.original, diag.func, {});
    refuses(
      () => Schedule.of(K.diagScan).parallel("i"),
      /different iterations of i may touch the same element of y/,
    );
    refuses(() => Schedule.of(K.lastWins).parallel("i"), /every iteration of i overwrites y\[0\]/);
    refuses(() => Schedule.of(K.privateTemp).parallel("i"), /every iteration of i overwrites t\[0\]/);
    const s = Schedule.of(K.matmulInt);
    s.bind("i", "blockIdx.x");
    refuses(() => s.parallel("i"), /loop i is already bound to blockIdx.x/);
  });
});

describe("annotate", () => {
  test("annotates loops and blocks; golden", () => {
    const s = Schedule.of(K.matmulInt);
    s.annotate("k", "unroll_depth", 4);
    s.annotate("k", "pragma", "keep");
    s.annotate("c", "tensorize", false);
    expect(loop(s, "k").annotations).toEqual({ unroll_depth: 4, pragma: "keep" });
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmulInt(a: Tensor<i32, [7, 5]>, b: Tensor<i32, [5, 9]>, c: Tensor<i32, [7, 9]>) {
        for (let i = 0; i < 7; i++) {
          for (let j = 0; j < 9; j++) {
            for (let k = 0; k < 5; k++) { // unroll_depth=4, pragma="keep"
              block "c" { // tensorize=false
                c[i][j] = c[i][j] + a[i][k] * b[k][j];
              }
            }
          }
        }
      }
      "
    `);
    expectSameResults(s.original, s.func, {});
    expectValid(s);
    expectTraceRoundTrip(s);
  });

  test("refusals", () => {
    const s = Schedule.of(K.matmulInt);
    refuses(() => s.annotate("zz", "a", 1), /no loop or block named zz in matmulInt/);
    refuses(() => s.annotate("k", "", 1), /the key must be a non-empty string/);
    refuses(
      () => s.annotate("k", "a", Infinity),
      /the value for a must be a string, a finite number or a boolean/,
    );
  });
});
