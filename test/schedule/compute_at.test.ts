import { describe, expect, it } from "vitest";
import * as B from "../../lower/ir/build.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { Schedule, replay, traceFromJson, traceToJson } from "../../lower/schedule/index.ts";
import { rewriteStmt } from "../../lower/ir/transform.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { expectSameResults } from "../helpers/random.ts";
import { expectTraceRoundTrip, expectValid } from "./roundtrip.ts";
import {
  clobber,
  ewChain,
  matmul,
  reluMatmul,
  reluAccMatmul,
  lastWins,
  softmaxRows,
  splitInit,
  shifted,
  broadcast,
  stencil,
  tiledMatmul,
  twoOutputs,
} from "./kernels_compute.ts";

/** Schedules a kernel, checks it against the unscheduled one and that its trace replays. */
function scheduled(
  k: KernelDef,
  steps: (s: Schedule) => void,
  symbols: Record<string, number> = {},
  tol?: number,
): Schedule {
  const s = Schedule.of(k);
  steps(s);
  for (const seed of [1, 2])
    expectSameResults(s.original, s.func, symbols, { seed, ...(tol ? { tol } : {}) });
  const again = replay(lowerKernel(k), traceFromJson(traceToJson(s.trace)));
  expect(printFunc(again.func)).toBe(printFunc(s.func));
  expectTraceRoundTrip(s);
  expectValid(s);
  return s;
}

const refuses = (k: KernelDef | PrimFunc, steps: (s: Schedule) => void, message: RegExp): void => {
  const s = Schedule.of(k);
  expect(() => steps(s)).toThrow(message);
};

describe("computeAt", () => {
  it("moves an elementwise producer under its consumer's inner loop and compacts it", () => {
    const s = scheduled(ewChain, (s) => s.computeAt("t", "j_1"));
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function ewChain(x: Tensor<i32, [7, 9]>, y: Tensor<i32, [7, 9]>) {
        const t = local(i32, [1, 1]);
        const u = local(i32, [7, 9]);
        for (let i_1 = 0; i_1 < 7; i_1++) {
          for (let j_1 = 0; j_1 < 9; j_1++) {
            block "t" {
              t[0][0] = x[i_1][j_1] * 3 + 1;
            }
            block "u" {
              u[i_1][j_1] = t[0][0] - x[i_1][j_1];
            }
          }
        }
        for (let i_2 = 0; i_2 < 7; i_2++) {
          for (let j_2 = 0; j_2 < 9; j_2++) {
            block "y" {
              y[i_2][j_2] = max(u[i_2][j_2], 0) * 2;
            }
          }
        }
      }
      "
    `);
  });

  it("keeps the loops the consumer iteration needs whole (one row per i)", () => {
    const s = scheduled(ewChain, (s) => {
      s.computeAt("u", "i_2");
      s.computeAt("t", "i_2");
    });
    const text = printFunc(s.func);
    expect(text).toContain("const t = local(i32, [1, 9]);");
    expect(text).toContain("const u = local(i32, [1, 9]);");
  });

  it("moves a whole reduction (init and update) under the consumer of y = relu(x @ w)", () => {
    for (const loop of ["j_1", "i_1"]) {
      const s = scheduled(reluMatmul, (s) => s.computeAt("t_1", loop));
      expect(s.getLoops("t_1")).toEqual(loop === "j_1" ? ["i_1", "j_1", "k"] : ["i_1", "j", "k"]);
    }
  });

  it("moves a matmul nest with its scalar accumulator under the relu's loop", () => {
    const s = scheduled(reluAccMatmul, (s) => s.computeAt("acc_1", "j_1"));
    expect(s.getLoops("acc_1")).toEqual(["i_1", "j_1", "k"]);
    expect(printFunc(s.func)).toContain("const t = local(f32, [1, 1]);");
  });

  it("keeps a loop whole when one of the nest's stores does not use it", () => {
    // i indexes t but every iteration overwrites last[0]: shrinking i would keep the wrong one.
    const s = scheduled(lastWins, (s) => s.computeAt("t", "i_1"));
    expect(s.getLoops("t")).toEqual(["i_1", "i"]);
    expect(printFunc(s.func)).toContain("for (let i = 0; i < 9; i++) {");
  });

  it("tiles a producer under a tile loop of a hand-tiled consumer, compacting it to the tile", () => {
    const s = scheduled(
      tiledMatmul,
      (s) => {
        s.cacheRead("c_1", "a", "local");
        s.computeAt("a_local", "ko");
      },
      {},
    );
    expect(printFunc(s.func)).toContain("const a_local = local(f32, [3, 5]);");
    expect(printFunc(s.func)).toContain("a_local[ax0][ax1] = a[ax0 + io * 3][ax1 + ko * 5];");
  });

  it("moves a copy of a symbolic-size input under a row loop", () => {
    const s = scheduled(
      matmul,
      (s) => {
        s.cacheRead("c_1", "a", "local");
        s.computeAt("a_local", "i");
      },
      { m: 5, n: 3, k: 7 },
    );
    expect(printFunc(s.func)).toContain("const a_local = local(f32, [1, k]);");
  });

  it("moves a row-buffer producer inside a softmax row", () => {
    scheduled(
      softmaxRows,
      (s) => {
        s.cacheRead("y", "e", "local");
        s.computeAt("e_local", "j_3");
      },
      { m: 3 },
    );
  });

  it("guards a producer whose needed range may leave its own (a split with a tail)", () => {
    const s = scheduled(ewChain, (s) => {
      const [j0] = s.split("j_1", [null, 4]);
      s.computeAt("t", j0!);
    });
    expect(printFunc(s.func)).toContain("if (j + j_1_0 * 4 < 9) {");
    expect(printFunc(s.func)).toContain("const t = local(i32, [1, 4]);");
    scheduled(
      matmul,
      (s) => {
        const [i0] = s.split("i", [null, 4]);
        s.cacheRead("c_1", "a", "local");
        s.computeAt("a_local", i0!);
      },
      { m: 7, n: 3, k: 5 },
    );
  });

  it("refuses what would change the results", () => {
    refuses(
      ewChain,
      (s) => s.computeAt("t", "j_2"),
      /computeAt into a non-ancestor: nothing under loop j_2 reads t/,
    );
    refuses(ewChain, (s) => s.computeAt("t", "j"), /block t is already inside loop j/);
    refuses(ewChain, (s) => s.computeAt("u", "j"), /block u runs after loop j/);
    refuses(
      stencil,
      (s) => s.computeAt("t", "i_1"),
      /computeAt into a non-ancestor: t is also read outside loop i_1, at t\[i_2\] \(block "z"\)/,
    );
    refuses(
      splitInit,
      (s) => s.computeAt("t_1", "j_2"),
      /accumulates into t .* but does not initialize it; the reduction cannot be computed whole inside loop j_2/,
    );
    refuses(twoOutputs, (s) => s.computeAt("t", "i_1"), /writes parameter t, which must be written whole/);
    refuses(
      clobber,
      (s) => s.computeAt("t", "i_2"),
      /block t reads x, which is written before or inside loop i_2, at x\[i_1\] \(block "x"\)/,
    );
  });
});

describe("reverseComputeAt", () => {
  it("moves an elementwise consumer under its producer's loop (y = relu(x @ w))", () => {
    const s = scheduled(reluMatmul, (s) => s.reverseComputeAt("y", "j"));
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function reluMatmul(x: Tensor<i32, [5, 7]>, w: Tensor<i32, [7, 3]>, y: Tensor<i32, [5, 3]>) {
        const t = local(i32, [1, 1]);
        for (let i = 0; i < 5; i++) {
          for (let j = 0; j < 3; j++) {
            block "t" {
              t[0][0] = 0;
            }
            for (let k = 0; k < 7; k++) {
              block "t_1" {
                t[0][0] = t[0][0] + x[i][k] * w[k][j];
              }
            }
            block "y" {
              y[i][j] = max(t[0][0], 0);
            }
          }
        }
      }
      "
    `);
  });

  it("moves a consumer under an outer producer loop, keeping inner loops", () => {
    const s = scheduled(ewChain, (s) => {
      s.reverseComputeAt("u", "i");
      s.reverseComputeAt("y", "i");
    });
    expect(s.getLoops("y")).toEqual(["i", "j_2"]);
  });

  it("guards a consumer that covers less than its producer's loop", () => {
    const s = scheduled(stencil, (s) => s.reverseComputeAt("z", "i"));
    expect(printFunc(s.func)).toContain("if (i < 8) {");
  });

  it("moves a softmax row's copy back under the row loop", () => {
    const s = scheduled(
      softmaxRows,
      (s) => {
        const back = s.cacheWrite("y", "y", "local");
        s.reverseComputeAt(back, "i");
      },
      { m: 3 },
    );
    expect(printFunc(s.func)).toContain("const y_local = local(f32, [1, 11]);");
  });

  it("moves a cacheWrite copy back under the tile loop", () => {
    const s = scheduled(tiledMatmul, (s) => {
      const back = s.cacheWrite("c_1", "c", "local");
      s.reverseComputeAt(back, "jo");
    });
    expect(printFunc(s.func)).toContain("const c_local = local(f32, [3, 2]);");
    expect(printFunc(s.func)).toContain("c[ax0 + io * 3][ax1 + jo * 2] = c_local[ax0][ax1];");
  });

  it("refuses what would change the results", () => {
    refuses(
      reluMatmul,
      (s) => s.reverseComputeAt("y", "k"),
      /iterations of loop k do not write disjoint parts of t/,
    );
    refuses(
      reluMatmul,
      (s) => s.reverseComputeAt("t", "j_1"),
      /block t runs before loop j_1: it cannot consume what the loop produces/,
    );
    refuses(ewChain, (s) => s.reverseComputeAt("y", "j"), /block y's nest reads nothing that loop j writes/);
    refuses(
      stencil,
      (s) => s.reverseComputeAt("y", "i"),
      /block y reads t \(dimension 0\) beyond what one iteration of loop i writes/,
    );
    refuses(stencil, (s) => s.reverseComputeAt("y", "i_2"), /block y runs before loop i_2/);
    refuses(
      stencil,
      (s) => s.reverseComputeAt("z", "i_1"),
      /block z's nest reads nothing that loop i_1 writes/,
    );
  });
});

describe("computeInline", () => {
  it("inlines an elementwise chain into its last consumer, dropping the buffers", () => {
    const s = scheduled(ewChain, (s) => {
      s.computeInline("t");
      s.computeInline("u");
    });
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function ewChain(x: Tensor<i32, [7, 9]>, y: Tensor<i32, [7, 9]>) {
        for (let i_2 = 0; i_2 < 7; i_2++) {
          for (let j_2 = 0; j_2 < 9; j_2++) {
            block "y" {
              y[i_2][j_2] = max(x[i_2][j_2] * 3 + 1 - x[i_2][j_2], 0) * 2;
            }
          }
        }
      }
      "
    `);
  });

  it("inlines into several consumers, with shifted and broadcast indices", () => {
    const s = scheduled(stencil, (s) => s.computeInline("t"));
    expect(printFunc(s.func)).toContain("y[i_1] = x[i_1] * 2 + x[i_1 + 1] * 2;");
    scheduled(softmaxRows, (s) => s.computeInline("e"), { m: 4 });
  });

  it("refuses reductions, outputs, several stores and values that change in between", () => {
    refuses(
      reluMatmul,
      (s) => s.computeInline("t_1"),
      /block t_1 is a reduction: t is read in its own value/,
    );
    refuses(reluMatmul, (s) => s.computeInline("t"), /t is also written by block t_1/);
    refuses(
      twoOutputs,
      (s) => s.computeInline("t"),
      /writes parameter t: a global output cannot be inlined away/,
    );
    refuses(
      reluAccMatmul,
      (s) => s.computeInline("t"),
      /acc\[0\] \+ bias\[j\] reads acc, which is not in scope at both places/,
    );
    refuses(clobber, (s) => s.computeInline("t"), /reads x, which is written \(x\[\.\.\.\] = 0\) in between/);
    // A block holding two stores (built by hand: the frontend makes one store per block).
    const f = lowerKernel(ewChain);
    const twoStores = {
      ...f,
      body: rewriteStmt(f.body, {
        stmt: (x) =>
          x.kind === "block" && x.name === "t" && x.body.kind === "store"
            ? { ...x, body: B.seq([x.body, x.body]) }
            : x,
      }),
    };
    refuses(
      twoStores,
      (s) => s.computeInline("t"),
      /block t holds 2 stores; only a block that is a single store can be inlined/,
    );
  });
});

describe("reverseComputeInline", () => {
  it("folds relu into the epilogue of a matmul", () => {
    const s = scheduled(reluAccMatmul, (s) => s.reverseComputeInline("y"));
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function reluAccMatmul(x: Tensor<f32, [5, 7]>, w: Tensor<f32, [7, 3]>, bias: Tensor<f32, [3]>, y: Tensor<f32, [5, 3]>) {
        for (let i = 0; i < 5; i++) {
          for (let j = 0; j < 3; j++) {
            const acc = local(f32, [1]);
            block "acc" {
              acc[0] = f32(0);
            }
            for (let k = 0; k < 7; k++) {
              block "acc_1" {
                acc[0] = acc[0] + x[i][k] * w[k][j];
              }
            }
            block "t" {
              y[i][j] = max(acc[0] + bias[j], f32(0));
            }
          }
        }
      }
      "
    `);
  });

  it("folds an elementwise consumer into its producer's store", () => {
    const s = scheduled(ewChain, (s) => s.reverseComputeInline("y"));
    expect(printFunc(s.func)).toContain(
      'block "u" {\n        y[i_1][j_1] = max(t[i_1][j_1] - x[i_1][j_1], 0) * 2;',
    );
    expect(printFunc(s.func)).not.toContain("const u");
    scheduled(ewChain, (s) => {
      s.reverseComputeInline("y");
      s.reverseComputeInline("u");
    });
  });

  it("refuses reductions, non-bijective reads and broadcasts", () => {
    refuses(
      reluMatmul,
      (s) => s.reverseComputeInline("y"),
      /t is written by block t and block t_1 .*the producer cannot absorb block y/,
    );
    refuses(stencil, (s) => s.reverseComputeInline("y"), /t is also read by block z, which needs it kept/);
    refuses(stencil, (s) => s.reverseComputeInline("z"), /t is also read by block y, which needs it kept/);
    refuses(
      twoOutputs,
      (s) => s.reverseComputeInline("y"),
      /t is a parameter: its values must still be written/,
    );
    refuses(
      shifted,
      (s) => s.reverseComputeInline("y"),
      /block y reads t at indices that are not a bijection of its loop variables/,
    );
    refuses(
      broadcast,
      (s) => s.reverseComputeInline("z"),
      /block z's loop j does not run over t's index as the producer's loop does/,
    );
    refuses(
      softmaxRows,
      (s) => s.reverseComputeInline("y"),
      /block y reads several computed buffers \(e, s\)/,
    );
  });
});
