/**
 * Cooperative fetching, TVM's classic GPU matmul schedule: block and thread tiles, the K loop split
 * into ko/ki, A and B cached in shared memory under ko (the tile spans the threads of the block),
 * the copy loops fused, split and bound to the same threadIdx axes, ki unrolled. Checked on the
 * CPU emulation of device IR against the unscheduled matmul, serially against it on the CPU
 * backend, and through a trace round trip.
 */
import { describe, expect, it } from "vitest";
import { kernel, f32, type Tensor } from "../../dsl/index.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { verifyFunc } from "../../lower/ir/verify.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule, replay, traceFromJson, traceToJson } from "../../lower/schedule/index.ts";
import { expectSameResults } from "../helpers/random.ts";
import { bindRaw, deviceError } from "../passes/helpers.ts";
import { matmul } from "../passes/kernels.ts";
import { expectTraceRoundTrip } from "./roundtrip.ts";
import { variable } from "../../lower/ir/build.ts";
import type { Expr } from "../../lower/ir/nodes.ts";
import { loopPath, replaceStmt } from "../../lower/schedule/state.ts";
import { accMatmul } from "./kernels_compute.ts";

interface Classic {
  /** The kernel (matmul from test/passes/kernels.ts unless given): loops i, j, k; blocks acc_1, c. */
  kernel?: KernelDef;
  /** Threads per block along y and x (one output each). */
  ty: number;
  tx: number;
  /** K elements per shared stage. */
  kt: number;
  /** Cache C in a local buffer, written back per thread (reverseComputeAt). */
  localC?: boolean;
  /** Bind the thread loops only after computeAt (the order that cannot work). */
  bindLate?: boolean;
}

/** Fuses a copy's loops (those under `at`), splits them over ty x tx threads and binds them. */
function spreadCopy(s: Schedule, cache: string, at: string, p: Classic): void {
  const loops = s.getLoops(cache);
  const fused = s.fuse(...loops.slice(loops.indexOf(at) + 1));
  const [, ty, tx] = s.split(fused, [null, p.ty, p.tx]);
  s.bind(ty!, "threadIdx.y");
  s.bind(tx!, "threadIdx.x");
}

function classic(p: Classic): Schedule {
  const s = Schedule.of(p.kernel ?? matmul);
  const [i0, i1] = s.split("i", [null, p.ty]);
  const [j0, j1] = s.split("j", [null, p.tx]);
  s.reorder(i0!, j0!, i1!, j1!);
  const [ko, ki] = s.split("k", [null, p.kt]);
  const bindAll = (): void => {
    s.bind(i0!, "blockIdx.y");
    s.bind(j0!, "blockIdx.x");
    s.bind(i1!, "threadIdx.y");
    s.bind(j1!, "threadIdx.x");
  };
  if (!p.bindLate) bindAll();
  const as = s.cacheRead("acc_1", "a", "shared");
  const bs = s.cacheRead("acc_1", "b", "shared");
  s.computeAt(as, ko!);
  s.computeAt(bs, ko!);
  if (p.bindLate) bindAll();
  spreadCopy(s, as, ko!, p);
  spreadCopy(s, bs, ko!, p);
  s.unroll(ki!);
  if (p.localC) {
    const back = s.cacheWrite("c", "c", "local");
    s.reverseComputeAt(back, j1!);
  }
  return s;
}

/** Odd sizes: partial tiles along every axis, a K tail, and a single element. */
const SIZES = [
  { m: 37, n: 29, k: 19 },
  { m: 5, n: 70, k: 33 },
  { m: 1, n: 1, k: 1 },
];

function checkOnDevice(s: Schedule, sizes: readonly Record<string, number>[] = SIZES): void {
  const dev = lowerToDevice(s.func, TARGETS.sm_90);
  for (const [seed, syms] of sizes.entries())
    expect(deviceError(s.original, dev, syms, { seed }), JSON.stringify(syms)).toBe(0);
}

/**
 * The loop-IR verifier (lower/ir/verify.ts) does not know cooperative bindings yet: it reports a
 * threadIdx axis bound inside a loop bound to it, which the launch pass accepts (same extent, the
 * same thread index). Everything else must verify.
 */
function expectValidCooperative(s: Schedule): void {
  const rebound = /: threadIdx\.[xyz] is bound again inside a loop already bound to it$/;
  expect(verifyFunc(s.func).filter((p) => !rebound.test(p))).toEqual([]);
}

describe("cooperative fetching: the classic GPU matmul", () => {
  it("stages spanning tiles, copies spread over the threads, outside the bounds guards (golden)", () => {
    const s = classic({ ty: 4, tx: 4, kt: 4 });
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmul(a: Tensor<f32, [m, k]>, b: Tensor<f32, [k, n]>, c: Tensor<f32, [m, n]>) {
        const b_shared = shared(f32, [4, 4]);
        const a_shared = shared(f32, [4, 4]);
        for (let i_0 = 0; i_0 < floordiv(m + 3, 4); i_0++) { // blockIdx.y
          for (let j_0 = 0; j_0 < floordiv(n + 3, 4); j_0++) { // blockIdx.x
            for (let i_1 = 0; i_1 < 4; i_1++) { // threadIdx.y
              for (let j_1 = 0; j_1 < 4; j_1++) { // threadIdx.x
                const acc = local(f32, [1]);
                if (j_0 * 4 + j_1 < n && i_0 * 4 + i_1 < m) {
                  block "acc" {
                    acc[0] = f32(0);
                  }
                }
                for (let k_0 = 0; k_0 < floordiv(k + 3, 4); k_0++) {
                  for (let ax0_ax1_fused_0 = 0; ax0_ax1_fused_0 < 1; ax0_ax1_fused_0++) {
                    for (let ax0_ax1_fused_1 = 0; ax0_ax1_fused_1 < 4; ax0_ax1_fused_1++) { // threadIdx.y
                      for (let ax0_ax1_fused_2 = 0; ax0_ax1_fused_2 < 4; ax0_ax1_fused_2++) { // threadIdx.x
                        block "a_shared" {
                          a_shared[floordiv((ax0_ax1_fused_0 * 4 + ax0_ax1_fused_1) * 4 + ax0_ax1_fused_2, 4)][floormod((ax0_ax1_fused_0 * 4 + ax0_ax1_fused_1) * 4 + ax0_ax1_fused_2, 4)] = a[min(floordiv((ax0_ax1_fused_0 * 4 + ax0_ax1_fused_1) * 4 + ax0_ax1_fused_2, 4) + i_0 * 4, m - 1)][min(floormod((ax0_ax1_fused_0 * 4 + ax0_ax1_fused_1) * 4 + ax0_ax1_fused_2, 4) + k_0 * 4, k - 1)];
                        }
                      }
                    }
                  }
                  for (let ax0_1_ax1_1_fused_0 = 0; ax0_1_ax1_1_fused_0 < 1; ax0_1_ax1_1_fused_0++) {
                    for (let ax0_1_ax1_1_fused_1 = 0; ax0_1_ax1_1_fused_1 < 4; ax0_1_ax1_1_fused_1++) { // threadIdx.y
                      for (let ax0_1_ax1_1_fused_2 = 0; ax0_1_ax1_1_fused_2 < 4; ax0_1_ax1_1_fused_2++) { // threadIdx.x
                        block "b_shared" {
                          b_shared[floordiv((ax0_1_ax1_1_fused_0 * 4 + ax0_1_ax1_1_fused_1) * 4 + ax0_1_ax1_1_fused_2, 4)][floormod((ax0_1_ax1_1_fused_0 * 4 + ax0_1_ax1_1_fused_1) * 4 + ax0_1_ax1_1_fused_2, 4)] = b[min(floordiv((ax0_1_ax1_1_fused_0 * 4 + ax0_1_ax1_1_fused_1) * 4 + ax0_1_ax1_1_fused_2, 4) + k_0 * 4, k - 1)][min(floormod((ax0_1_ax1_1_fused_0 * 4 + ax0_1_ax1_1_fused_1) * 4 + ax0_1_ax1_1_fused_2, 4) + j_0 * 4, n - 1)];
                        }
                      }
                    }
                  }
                  if (j_0 * 4 + j_1 < n && i_0 * 4 + i_1 < m) {
                    for (let k_1 = 0; k_1 < 4; k_1++) { // unrolled
                      if (k_0 * 4 + k_1 < k) {
                        block "acc_1" {
                          acc[0] = acc[0] + a_shared[i_1][k_1] * b_shared[k_1][j_1];
                        }
                      }
                    }
                  }
                }
                if (j_0 * 4 + j_1 < n && i_0 * 4 + i_1 < m) {
                  block "c" {
                    c[i_0 * 4 + i_1][j_0 * 4 + j_1] = acc[0];
                  }
                }
              }
            }
          }
        }
      }
      "
    `);
    expectValidCooperative(s);
  });

  it("computes the matmul on the device emulation (barriers from the lowering), at odd sizes", () => {
    for (const p of [
      { ty: 8, tx: 8, kt: 8 },
      { ty: 4, tx: 8, kt: 16 }, // more tile elements than threads: each thread copies several
      { ty: 8, tx: 4, kt: 3 },
    ])
      checkOnDevice(classic(p));
  });

  it("with C cached in a local buffer and written back per thread (tiles that divide the shape)", () => {
    // cacheWrite refuses outputs written under split's bounds guards, so this one has none.
    const s = classic({ kernel: accMatmul, ty: 4, tx: 4, kt: 5, localC: true });
    expect(printFunc(s.func)).toContain("const c_local = local(f32, [1, 1]);");
    checkOnDevice(s, [{}]);
    expectSameResults(s.original, s.func, {});
    expectTraceRoundTrip(s);
    expectValidCooperative(s);
  });

  it("keeps the serial semantics and replays its trace", () => {
    const s = classic({ ty: 4, tx: 8, kt: 8 });
    expectSameResults(s.original, s.func, { m: 13, n: 11, k: 10 });
    const again = replay(lowerKernel(matmul), traceFromJson(traceToJson(s.trace)));
    expect(printFunc(again.func)).toBe(printFunc(s.func));
    expectTraceRoundTrip(s);
    expectValidCooperative(s);
  });

  it("lowers to one stage of copies and compute per K step, separated by barriers", () => {
    const dev = lowerToDevice(classic({ ty: 8, tx: 8, kt: 8 }).func, TARGETS.sm_90);
    const text = printFunc(dev);
    expect(text).toContain("block [8, 8, 1]");
    expect(text).toContain("shared 512 bytes");
    // The copies are not under the thread-dependent bounds guard; the compute is.
    expect(text).toMatch(/a_shared\[[^\n]*\] = a\[min\(/);
    expect(text.match(/syncThreads\(\)/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it("doubleBuffer: each K step stages into the other half of the tiles, one barrier a step", () => {
    const barriers = (x: Schedule) =>
      printFunc(lowerToDevice(x.func, TARGETS.sm_90)).match(/syncThreads\(\)/g)?.length;
    const single = classic({ ty: 8, tx: 8, kt: 8 });
    const s = classic({ ty: 8, tx: 8, kt: 8 });
    s.doubleBuffer("a_shared", "k_0");
    s.doubleBuffer("b_shared", "k_0");
    const text = printFunc(s.func);
    expect(text).toContain("const a_shared = shared(f32, [2, 8, 8]);");
    expect(text).toMatch(/a_shared\[k_0 & 1\]\[/);
    // Before: one before the copies (the previous step's readers), one before the products.
    expect(barriers(single)).toBe(2);
    expect(barriers(s)).toBe(1);
    // The emulation runs each thread to its next barrier: a thread that overwrote a half another
    // still reads would change the results.
    checkOnDevice(s);
    expectSameResults(s.original, s.func, { m: 13, n: 11, k: 10 });
    expectTraceRoundTrip(s);
  });

  it("doubleBuffer with three copies: step k stages into copy k % 3, one barrier a step", () => {
    const s = classic({ ty: 8, tx: 8, kt: 8 });
    s.doubleBuffer("a_shared", "k_0", 3);
    s.doubleBuffer("b_shared", "k_0", 4);
    const text = printFunc(s.func);
    expect(text).toContain("const a_shared = shared(f32, [3, 8, 8]);");
    expect(text).toMatch(/a_shared\[i32\(u32\(k_0\) % u32\(3\)\)\]\[/);
    expect(text).toMatch(/b_shared\[k_0 & 3\]\[/);
    expect(text).toMatch(/double_buffer:a_shared=3/);
    expect(printFunc(lowerToDevice(s.func, TARGETS.sm_90)).match(/syncThreads\(\)/g)?.length).toBe(1);
    checkOnDevice(s);
    expectSameResults(s.original, s.func, { m: 13, n: 11, k: 30 });
    expectTraceRoundTrip(s);
    expect(() => classic({ ty: 4, tx: 4, kt: 4 }).doubleBuffer("a_shared", "k_0", 1)).toThrow(
      /buffers must be an integer from 2 to 8; got 1/,
    );
    // Copies indexed by k_0 % 3 need k_0 to count from a constant 0 or more; 4 copies (k_0 & 3) do not.
    const shifted = classic({ ty: 4, tx: 4, kt: 4 });
    const { loop } = loopPath(shifted.func, "k_0", "test");
    const from = (min: Expr) => new Schedule(replaceStmt(shifted.func, loop, { ...loop, min }));
    expect(() => from(variable("start")).doubleBuffer("a_shared", "k_0", 3)).toThrow(
      /loop k_0 starts at start; 3 copies are indexed by k_0 % 3, which needs a loop from a constant 0 or more/,
    );
    expect(() => from(variable("start")).doubleBuffer("a_shared", "k_0", 4)).not.toThrow();
  });

  it("doubleBuffer refuses parameters, local buffers, loops that do not hold every access", () => {
    const s = classic({ ty: 4, tx: 4, kt: 4 });
    expect(() => s.doubleBuffer("a", "k_0")).toThrow(/a is a parameter/);
    const t = classic({ ty: 4, tx: 4, kt: 4, kernel: accMatmul, localC: true });
    expect(() => t.doubleBuffer("c_local", "k_0")).toThrow(
      /c_local is local; doubleBuffer is for shared buffers/,
    );
    // The products read a_shared in k_1, the copies write it outside k_1.
    expect(() => s.doubleBuffer("a_shared", "k_1")).toThrow(
      /a_shared is also accessed outside loop k_1; every access must be inside it/,
    );
    expect(() => s.doubleBuffer("a_shared", "i_0")).toThrow(/loop i_0 is thread/);
  });

  it("binds an outer thread loop after the copy inside it is bound (either order)", () => {
    // Only A is staged: B's tile would depend on j_1 while j_1 is still serial.
    const s = Schedule.of(matmul);
    const [i0, i1] = s.split("i", [null, 4]);
    const [j0, j1] = s.split("j", [null, 8]);
    s.reorder(i0!, j0!, i1!, j1!);
    const [ko] = s.split("k", [null, 8]);
    s.bind(i0!, "blockIdx.y");
    s.bind(j0!, "blockIdx.x");
    s.bind(i1!, "threadIdx.y");
    const as = s.cacheRead("acc_1", "a", "shared");
    s.computeAt(as, ko!);
    // a_shared spans i_1's threads but is the same for every j_1: copy it over 4 x 8 threads.
    spreadCopy(s, as, ko!, { ty: 4, tx: 8, kt: 8 });
    s.bind(j1!, "threadIdx.x");
    checkOnDevice(s);
    expectTraceRoundTrip(s);
  });
});

/** Each t stores all of y (the same values): a loop inside t bound to t's axis would split that. */
const everyThread = kernel(function everyThread(
  x: Tensor<f32, [8]>,
  y: Tensor<f32, [8]>,
  z: Tensor<f32, [8]>,
) {
  for (let t = 0; t < 8; t++) {
    for (let u = 0; u < 8; u++) y[u] = x[u] * 2;
    for (let v = 0; v < 4; v++) z[v] = x[v];
    for (let w = 0; w < 8; w++) z[w] = x[t] + f32(w);
  }
});

describe("cooperative bind: refusals", () => {
  const threaded = (): Schedule => new Schedule(bindRaw(lowerKernel(everyThread), "t", "threadIdx.x"));

  it("binding the thread loops after computeAt: the tile covers one thread, and the error says why", () => {
    expect(() => classic({ ty: 4, tx: 4, kt: 4, bindLate: true })).toThrow(
      /threads of threadIdx.y would race: every iteration of i_1 overwrites a_shared.*bind the thread loops first, then computeAt the shared cache/,
    );
  });

  it("a loop bound to its enclosing loop's axis must write shared memory only", () => {
    expect(() => threaded().bind("u", "threadIdx.x")).toThrow(
      /loop u is inside loop t, already bound to threadIdx.x: .*cooperative fetching\); here each thread would run only its own iteration of u, which writes y \(global memory\)/,
    );
  });

  it("... have the same extent, and do the same work in every iteration of the thread loops", () => {
    expect(() => threaded().bind("v", "threadIdx.x")).toThrow(
      /nested loops on one axis share its index, so they need the same extent \(4 for v, 8 for t\)/,
    );
    expect(() => threaded().bind("w", "threadIdx.x")).toThrow(
      /the serial nest only if w does the same work in every iteration of the thread loops around it, but it uses t/,
    );
  });

  it("a block axis is still bound once on any path", () => {
    const s = new Schedule(bindRaw(lowerKernel(everyThread), "t", "blockIdx.x"));
    expect(() => s.bind("u", "blockIdx.x")).toThrow(
      /an axis can be bound only once on any path \(thread-block axes without exception\)/,
    );
  });
});
