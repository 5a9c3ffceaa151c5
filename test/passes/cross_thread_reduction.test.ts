import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { crossThreadReductionPass } from "../../lower/passes/cross_thread_reduction.ts";
import { launchPass } from "../../lower/passes/launch.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { bindRaw, expectDeviceMatches, rmsNormGpu, rmsNormRef } from "./helpers.ts";
import { notAcross, rowMaxSum } from "./kernels.ts";

const stage = (f: Parameters<typeof launchPass>[0], t: Target) =>
  crossThreadReductionPass(launchPass(f, t), t);

/** rowMaxSum with both row reductions across `threads` threads of threadIdx.x. */
function rowMaxSumGpu(threads: number): Schedule {
  const s = Schedule.of(rowMaxSum);
  s.bind("i", "blockIdx.x");
  for (const k of ["k", "k_1"]) {
    const [kt] = s.split(k, [threads, null]);
    s.bind(kt!, "threadIdx.x");
  }
  return s;
}

describe("cross_thread_reduction", () => {
  it("combines partials by warp shuffles, then shared memory across warps (golden)", () => {
    expect(printFunc(stage(rmsNormGpu({ threads: 64 }).func, TARGETS.sm_90))).toMatchInlineSnapshot(`
      "// launch: grid [m, 1, 1], block [64, 1, 1], warp 32, shared 0 bytes
      function rmsNormRows(x: Tensor<f32, [m, n]>, w: Tensor<f32, [n]>, y: Tensor<f32, [m, n]>, eps: f32) {
        for (let i = 0; i < m; i++) { // blockIdx.x
          const ss = local(f32, [1]);
          block "ss" {
            ss[0] = f32(0);
          }
          const ss_partial = local(f32, [1]);
          block "ss_red_init" { // all_threads=true
            ss_partial[0] = f32(0);
          }
          for (let k_0 = 0; k_0 < 64; k_0++) { // threadIdx.x, cross_thread_reduction="ss"
            for (let k_1_1 = 0; k_1_1 < floordiv(n + 63, 64); k_1_1++) {
              if (k_0 * floordiv(n + 63, 64) + k_1_1 < n) {
                block "ss_1" {
                  ss_partial[0] = ss_partial[0] + x[i][k_0 * floordiv(n + 63, 64) + k_1_1] * x[i][k_0 * floordiv(n + 63, 64) + k_1_1];
                }
              }
            }
          }
          block "ss_allreduce" { // all_threads=true
            const ss_shared = shared(f32, [2]);
            ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 16, 32);
            ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 8, 32);
            ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 4, 32);
            ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 2, 32);
            ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 1, 32);
            if (floormod(thread_id(0), 32) == 0) {
              ss_shared[floordiv(thread_id(0), 32)] = ss_partial[0];
            }
            syncThreads();
            ss_partial[0] = ss_shared[0];
            for (let w_1 = 1; w_1 < 1 + 1; w_1++) {
              ss_partial[0] = ss_partial[0] + ss_shared[w_1];
            }
          }
          ss[0] = ss[0] + ss_partial[0];
          const r = rsqrt(ss[0] / f32(n) + eps);
          for (let k_1_0 = 0; k_1_0 < floordiv(n + 63, 64); k_1_0++) {
            for (let k_1_1_1 = 0; k_1_1_1 < 64; k_1_1_1++) { // threadIdx.x
              if (k_1_0 * 64 + k_1_1_1 < n) {
                block "y" {
                  y[i][k_1_0 * 64 + k_1_1_1] = x[i][k_1_0 * 64 + k_1_1_1] * r * w[k_1_0 * 64 + k_1_1_1];
                }
              }
            }
          }
        }
      }
      "
    `);
  });

  it("uses the target's warp width: wave64 needs no shared memory for 64 threads, the CPU only shared memory", () => {
    const f = rmsNormGpu({ threads: 64 }).func;
    const wave64 = printFunc(stage(f, TARGETS.gfx942));
    expect(wave64).toContain("shfl_xor(ss_partial[0], 32, 64)");
    expect(wave64).not.toContain("shared(");
    const cpu = printFunc(stage(f, TARGETS.cpu));
    expect(cpu).not.toContain("shfl_xor");
    expect(cpu).toContain("const ss_shared = shared(f32, [64]);");
    // 24 threads are not a power of two: every partial goes through shared memory.
    const odd = printFunc(stage(rmsNormGpu({ threads: 24 }).func, TARGETS.sm_90));
    expect(odd).not.toContain("shfl_xor");
    expect(odd).toContain("const ss_shared = shared(f32, [24]);");
  });

  it("computes what the serial kernel does, exactly for integers (a max into a local, a sum into a parameter)", () => {
    for (const target of [TARGETS.sm_90, TARGETS.gfx942, TARGETS.gfx1100, TARGETS.cpu])
      for (const threads of [64, 32, 8, 12]) {
        const f = rowMaxSumGpu(threads).func;
        const ref = lowerKernel(rowMaxSum);
        expectDeviceMatches(ref, stage(f, target), { m: 3, n: 45 });
        expectDeviceMatches(ref, lowerToDevice(f, target), { m: 4, n: 7 }, { seed: 2 });
      }
  });

  it("writes a reduction into global memory from one thread, into a local from every thread", () => {
    const text = printFunc(stage(rowMaxSumGpu(32).func, TARGETS.sm_90));
    expect(text).toContain("best[0] = max(best[0], best_partial[0]);");
    expect(text).toMatch(/if \(thread_id\(0\) == 0\) \{\n\s+sm\[i\] = sm\[i\] \+ sm_partial\[0\];/);
  });

  it("matches the float kernel on the device model, rows on threadIdx.y included", () => {
    for (const p of [{ threads: 64 }, { threads: 16, rowsPerBlock: 2 }, { threads: 8, rowsPerBlock: 4 }])
      expectDeviceMatches(
        rmsNormRef(),
        lowerToDevice(rmsNormGpu(p).func, TARGETS.sm_90),
        { m: 5, n: 33 },
        { scalars: { eps: 0.1 }, tol: 2e-6 },
      );
  });

  it("refuses reductions it cannot combine", () => {
    const rows = lowerKernel(rowMaxSum);
    expect(() => stage(bindRaw(rows, "k_1", "blockIdx.x"), TARGETS.sm_90)).toThrow(
      "tkc lower: cross_thread_reduction: loop k_1 bound to blockIdx.x carries a reduction into sm[i]: thread blocks cannot combine their results; bind the reduction loop to threadIdx, or keep it serial inside a block",
    );
    const f = lowerKernel(notAcross);
    expect(() => stage(bindRaw(f, "t", "threadIdx.x"), TARGETS.sm_90)).toThrow(
      "tkc lower: cross_thread_reduction: loop t (threadIdx.x) reduces into s across threads but also reads s[0], which would be one thread's partial value",
    );
    expect(() => stage(bindRaw(f, "t_1", "threadIdx.x"), TARGETS.sm_90)).toThrow(
      /every thread of loop t_1 \(threadIdx.x\) writes z\[0\], with a value that depends on the thread/,
    );
  });
});
