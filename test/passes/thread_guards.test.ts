import { describe, expect, it } from "vitest";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerStages } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { randomArgs } from "../helpers/random.ts";
import { expectDeviceMatches, rmsNormGpu, rmsNormRef } from "./helpers.ts";

const after = (name: string, p: Parameters<typeof rmsNormGpu>[0]) =>
  lowerStages(rmsNormGpu(p).func, TARGETS.sm_90, name).at(-1)!.func;

describe("thread_guards (tail handling)", () => {
  it("binds thread indices with lets and guards loops narrower than the launch (golden)", () => {
    const text = printFunc(after("thread_guards", { threads: 32, outThreads: 16 }));
    expect(text).toContain("const i = block_id(0);");
    expect(text).toContain("const k_0 = thread_id(0);");
    // The output loop has 16 threads in a 32-thread block: the other 16 skip it.
    expect(text).toMatch(
      /const k_1_1_1 = thread_id\(0\);\n\s+if \(k_1_1_1 < 16\) \{\n\s+if \(k_1_0 \* 16 \+ k_1_1_1 < n\) \{/,
    );
    expect(text).not.toMatch(/threadIdx|blockIdx/);
  });

  it("computes the same as the plain kernel", () => {
    for (const p of [
      { threads: 32, outThreads: 16 },
      { threads: 64, outThreads: 8 },
    ])
      expectDeviceMatches(
        rmsNormRef(),
        after("thread_guards", p),
        { m: 3, n: 41 },
        { scalars: { eps: 0.01 }, tol: 2e-6 },
      );
  });

  it("keeps a thread-dependent guard off the cross-thread combination (golden)", () => {
    // Two rows per block on threadIdx.y: split's tail guard (row < m) wraps the whole row.
    expect(printFunc(after("thread_guards", { threads: 16, rowsPerBlock: 2 }))).toMatchInlineSnapshot(`
      "// launch: grid [floordiv(m + 1, 2), 1, 1], block [16, 2, 1], warp 32, shared 0 bytes
      function rmsNormRows(x: Tensor<f32, [m, n]>, w: Tensor<f32, [n]>, y: Tensor<f32, [m, n]>, eps: f32) {
        const i_0 = block_id(0);
        const i_1 = thread_id(1);
        const cond = i_0 * 2 + i_1 < m;
        const ss = local(f32, [1]);
        if (cond) {
          block "ss" {
            ss[0] = f32(0);
          }
        }
        const ss_partial = local(f32, [1]);
        block "ss_red_init" { // all_threads=true
          ss_partial[0] = f32(0);
        }
        if (cond) {
          const k_0 = thread_id(0);
          for (let k_1_1 = 0; k_1_1 < floordiv(n + 15, 16); k_1_1++) {
            if (k_0 * floordiv(n + 15, 16) + k_1_1 < n) {
              block "ss_1" {
                ss_partial[0] = ss_partial[0] + x[i_0 * 2 + i_1][k_0 * floordiv(n + 15, 16) + k_1_1] * x[i_0 * 2 + i_1][k_0 * floordiv(n + 15, 16) + k_1_1];
              }
            }
          }
        }
        block "ss_allreduce" { // all_threads=true
          ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 8, 32);
          ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 4, 32);
          ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 2, 32);
          ss_partial[0] = ss_partial[0] + shfl_xor(ss_partial[0], 1, 32);
        }
        if (cond) {
          ss[0] = ss[0] + ss_partial[0];
        }
        if (cond) {
          const r = rsqrt(ss[0] / f32(n) + eps);
          for (let k_1_0 = 0; k_1_0 < floordiv(n + 15, 16); k_1_0++) {
            const k_1_1_1 = thread_id(0);
            if (k_1_0 * 16 + k_1_1_1 < n) {
              block "y" {
                y[i_0 * 2 + i_1][k_1_0 * 16 + k_1_1_1] = x[i_0 * 2 + i_1][k_1_0 * 16 + k_1_1_1] * r * w[k_1_0 * 16 + k_1_1_1];
              }
            }
          }
        }
      }
      "
    `);
  });

  it("without that, the lanes of an out-of-range row would skip the shuffle", () => {
    const before = after("cross_thread_reduction", { threads: 16, rowsPerBlock: 2 });
    const args = randomArgs(rmsNormRef(), { m: 3, n: 20 }, 1, { eps: 0.1 });
    expect(() => cpuDeviceKernel(before)(args)).toThrow(
      /16 of 32 lanes reached a shuffle or warp barrier, the others did not/,
    );
    expectDeviceMatches(
      rmsNormRef(),
      after("thread_guards", { threads: 16, rowsPerBlock: 2 }),
      { m: 3, n: 20 },
      { scalars: { eps: 0.1 }, tol: 2e-6 },
    );
  });
});
