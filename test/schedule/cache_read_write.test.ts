import { describe, expect, it } from "vitest";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { Schedule, replay, traceFromJson, traceToJson } from "../../lower/schedule/index.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { expectSameResults } from "../helpers/random.ts";
import { expectTraceRoundTrip, expectValid } from "./roundtrip.ts";
import {
  accMatmul,
  accumulate,
  cube,
  ewChain,
  gaps,
  gpuMatmul,
  matmul,
  mirror,
  softmaxRows,
  tiledMatmul,
} from "./kernels_compute.ts";

/** Schedules a kernel, checks it against the unscheduled one and that its trace replays. */
function scheduled(
  k: KernelDef,
  steps: (s: Schedule) => void,
  symbols: Record<string, number> = {},
): Schedule {
  const s = Schedule.of(k);
  steps(s);
  for (const seed of [1, 2]) expectSameResults(s.original, s.func, symbols, { seed });
  const again = replay(lowerKernel(k), traceFromJson(traceToJson(s.trace)));
  expect(printFunc(again.func)).toBe(printFunc(s.func));
  expectTraceRoundTrip(s);
  expectValid(s);
  return s;
}

const refuses = (k: KernelDef, steps: (s: Schedule) => void, message: RegExp): void => {
  const s = Schedule.of(k);
  expect(() => steps(s)).toThrow(message);
};

describe("cacheRead", () => {
  it("copies what the consumer reads before its outermost loop and redirects its loads", () => {
    const s = scheduled(ewChain, (s) => expect(s.cacheRead("y", "u", "local")).toBe("u_local"));
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function ewChain(x: Tensor<i32, [7, 9]>, y: Tensor<i32, [7, 9]>) {
        const t = local(i32, [7, 9]);
        for (let i = 0; i < 7; i++) {
          for (let j = 0; j < 9; j++) {
            block "t" {
              t[i][j] = x[i][j] * 3 + 1;
            }
          }
        }
        const u = local(i32, [7, 9]);
        const u_local = local(i32, [7, 9]);
        for (let i_1 = 0; i_1 < 7; i_1++) {
          for (let j_1 = 0; j_1 < 9; j_1++) {
            block "u" {
              u[i_1][j_1] = t[i_1][j_1] - x[i_1][j_1];
            }
          }
        }
        for (let ax0 = 0; ax0 < 7; ax0++) {
          for (let ax1 = 0; ax1 < 9; ax1++) {
            block "u_local" {
              u_local[ax0][ax1] = u[ax0][ax1];
            }
          }
        }
        for (let i_2 = 0; i_2 < 7; i_2++) {
          for (let j_2 = 0; j_2 < 9; j_2++) {
            block "y" {
              y[i_2][j_2] = max(u_local[i_2][j_2], 0) * 2;
            }
          }
        }
      }
      "
    `);
  });

  it("caches parameters of symbolic shape, and buffers written inside the consumer's outer loop", () => {
    const s = scheduled(matmul, (s) => s.cacheRead("c_1", "b", "shared"), { m: 3, n: 5, k: 7 });
    expect(printFunc(s.func)).toContain("const b_shared = shared(f32, [k, n]);");
    // e is written inside loop i: its copy goes inside i, before the consumer's own loop.
    const t = scheduled(softmaxRows, (s) => s.cacheRead("y", "e", "local"), { m: 3 });
    expect(t.getLoops("e_local")).toEqual(["i", "ax0"]);
    expect(t.getLoops("y")).toEqual(["i", "j_3"]);
    // Two caches of one buffer get distinct names.
    scheduled(ewChain, (s) => {
      expect(s.cacheRead("u", "x", "local")).toBe("x_local");
      expect(s.cacheRead("t", "x", "local")).toBe("x_local_1");
    });
  });

  it("refuses blocks that do not read the buffer or also write it", () => {
    refuses(ewChain, (s) => s.cacheRead("t", "u", "local"), /block t does not read u/);
    refuses(
      matmul,
      (s) => s.cacheRead("c_1", "c", "local"),
      /block c_1 also writes c; cache it with cacheWrite/,
    );
    refuses(
      ewChain,
      (s) => s.apply("cacheRead", "y", "u", "global"),
      /scope "global" is not one of shared, local/,
    );
    refuses(ewChain, (s) => s.cacheRead("y", "nope", "local"), /no buffer named nope/);
  });
});

describe("cacheWrite", () => {
  it("writes into a cache inside the nest and copies it back after", () => {
    const s = scheduled(matmul, (s) => expect(s.cacheWrite("c_1", "c", "local")).toBe("c_local"), {
      m: 3,
      n: 5,
      k: 4,
    });
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmul(a: Tensor<f32, [m, k]>, b: Tensor<f32, [k, n]>, c: Tensor<f32, [m, n]>) {
        const c_local = local(f32, [m, n]);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            block "c" {
              c_local[i][j] = f32(0);
            }
            for (let k_1 = 0; k_1 < k; k_1++) {
              block "c_1" {
                c_local[i][j] = c_local[i][j] + a[i][k_1] * b[k_1][j];
              }
            }
          }
        }
        for (let ax0 = 0; ax0 < m; ax0++) {
          for (let ax1 = 0; ax1 < n; ax1++) {
            block "c_local" {
              c[ax0][ax1] = c_local[ax0][ax1];
            }
          }
        }
      }
      "
    `);
  });

  it("caches the output tile of a tiled matmul and of an elementwise stage", () => {
    scheduled(tiledMatmul, (s) => s.cacheWrite("c", "c", "local"));
    scheduled(ewChain, (s) => s.cacheWrite("y", "y", "shared"));
    scheduled(softmaxRows, (s) => s.cacheWrite("y", "y", "local"), { m: 2 });
  });

  it("refuses uninitialized accumulations and writes with holes", () => {
    refuses(
      accumulate,
      (s) => s.cacheWrite("y", "y", "local"),
      /loop i reads y before writing it there; the cache would start uninitialized/,
    );
    refuses(
      gaps,
      (s) => s.cacheWrite("y", "y", "local"),
      /no single store covers what loop i writes of y without gaps/,
    );
    refuses(gaps, (s) => s.cacheWrite("z", "z", "local"), /z is written under a condition inside loop i_1/);
    refuses(mirror, (s) => s.cacheWrite("y", "y", "local"), /loop i reads y before writing it there/);
    refuses(ewChain, (s) => s.cacheWrite("y", "u", "local"), /block y does not write u/);
  });
});

describe("setScope", () => {
  it("changes an allocation's scope", () => {
    const s = scheduled(ewChain, (s) => s.setScope("t", "shared"));
    expect(printFunc(s.func)).toContain("const t = shared(i32, [7, 9]);");
  });
  it("refuses parameters", () => {
    refuses(ewChain, (s) => s.setScope("x", "shared"), /x is a parameter: global params cannot change scope/);
    refuses(
      ewChain,
      (s) => s.apply("setScope", "t", "texture"),
      /scope "texture" is not one of global, shared, local/,
    );
  });
});

describe("storageAlign", () => {
  it("pads the inner extent so the row stride is offset modulo factor", () => {
    const s = scheduled(tiledMatmul, (s) => {
      s.cacheRead("c_1", "a", "shared");
      s.computeAt("a_shared", "ko");
      s.storageAlign("a_shared", 0, 8, 1);
    });
    // a 3 x 5 tile: row stride 5 becomes 9 (9 % 8 == 1).
    expect(printFunc(s.func)).toContain("const a_shared = shared(f32, [3, 5], strides [3, 9]);");
    // Inner axes first: 1's stride 2 -> 3 (3 % 4 == 3), then 0's stride 4 * 3 -> 8 * 3 (24 % 8 == 0).
    const t = scheduled(cube, (s) => {
      s.storageAlign("t", 1, 4, 3);
      s.storageAlign("t", 0, 8, 0);
    });
    expect(printFunc(t.func)).toContain("const t = local(i32, [3, 4, 2], strides [3, 8, 3]);");
    // Already aligned: nothing changes.
    const u = scheduled(cube, (s) => s.storageAlign("t", 1, 4, 2));
    expect(printFunc(u.func)).toBe(printFunc(u.original));
  });
  it("refuses parameters, the last axis and impossible alignments", () => {
    refuses(ewChain, (s) => s.storageAlign("x", 0, 8, 1), /x is a parameter/);
    refuses(
      ewChain,
      (s) => s.storageAlign("t", 1, 8, 1),
      /axis 1 is the last dimension of t: its stride is always 1/,
    );
    refuses(ewChain, (s) => s.storageAlign("t", 0, 8, 8), /offset 8 is not in \[0, 8\)/);
    refuses(
      cube,
      (s) => s.storageAlign("t", 0, 8, 1),
      /no padding of dimension 1 makes t's stride 1 modulo 8/,
    );
  });
});

describe("a GPU-style matmul: shared tiles of A and B under the k-outer loop", () => {
  it("from a kernel written with block, thread and k loops", () => {
    const s = scheduled(gpuMatmul, (s) => {
      s.bind("by", "blockIdx.y");
      s.bind("bx", "blockIdx.x");
      s.bind("ty", "threadIdx.y");
      s.bind("tx", "threadIdx.x");
      s.cacheRead("acc_1", "a", "shared");
      s.cacheRead("acc_1", "b", "shared");
      s.computeAt("a_shared", "ko");
      s.computeAt("b_shared", "ko");
    });
    // Threads of a block share the tile: its region spans the threadIdx loops.
    expect(printFunc(s.func)).toContain("const a_shared = shared(f32, [4, 5]);");
    expect(printFunc(s.func)).toContain("acc[0] = acc[0] + a_shared[ty][ki] * b_shared[ki][tx];");
  });

  it("from a plain matmul after split, reorder and bind, with a local output tile", () => {
    const s = scheduled(accMatmul, (s) => {
      const [i0, i1] = s.split("i", [null, 4]);
      const [j0, j1] = s.split("j", [null, 4]);
      s.reorder(i0!, j0!, i1!, j1!);
      const [k0] = s.split("k", [null, 5]);
      s.bind(i0!, "blockIdx.y");
      s.bind(j0!, "blockIdx.x");
      s.bind(i1!, "threadIdx.y");
      s.bind(j1!, "threadIdx.x");
      s.cacheRead("acc_1", "a", "shared");
      s.cacheRead("acc_1", "b", "shared");
      s.computeAt("a_shared", k0!);
      s.computeAt("b_shared", k0!);
      s.storageAlign("a_shared", 0, 8, 1);
      const back = s.cacheWrite("c", "c", "local");
      s.reverseComputeAt(back, j1!);
    });
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function accMatmul(a: Tensor<f32, [12, 10]>, b: Tensor<f32, [10, 8]>, c: Tensor<f32, [12, 8]>) {
        const c_local = local(f32, [1, 1]);
        const b_shared = shared(f32, [5, 4]);
        const a_shared = shared(f32, [4, 5], strides [4, 9]);
        for (let i_0 = 0; i_0 < 3; i_0++) { // blockIdx.y
          for (let j_0 = 0; j_0 < 2; j_0++) { // blockIdx.x
            for (let i_1 = 0; i_1 < 4; i_1++) { // threadIdx.y
              for (let j_1 = 0; j_1 < 4; j_1++) { // threadIdx.x
                const acc = local(f32, [1]);
                block "acc" {
                  acc[0] = f32(0);
                }
                for (let k_0 = 0; k_0 < 2; k_0++) {
                  for (let ax0 = 0; ax0 < 4; ax0++) {
                    for (let ax1 = 0; ax1 < 5; ax1++) {
                      block "a_shared" {
                        a_shared[ax0][ax1] = a[ax0 + i_0 * 4][ax1 + k_0 * 5];
                      }
                    }
                  }
                  for (let ax0_1 = 0; ax0_1 < 5; ax0_1++) {
                    for (let ax1_1 = 0; ax1_1 < 4; ax1_1++) {
                      block "b_shared" {
                        b_shared[ax0_1][ax1_1] = b[ax0_1 + k_0 * 5][ax1_1 + j_0 * 4];
                      }
                    }
                  }
                  for (let k_1 = 0; k_1 < 5; k_1++) {
                    block "acc_1" {
                      acc[0] = acc[0] + a_shared[i_1][k_1] * b_shared[k_1][j_1];
                    }
                  }
                }
                block "c" {
                  c_local[0][0] = acc[0];
                }
                block "c_local" {
                  c[i_0 * 4 + i_1][j_0 * 4 + j_1] = c_local[0][0];
                }
              }
            }
          }
        }
      }
      "
    `);
  });
});
