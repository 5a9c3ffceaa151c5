import { describe, expect, it } from "vitest";
import { printFunc } from "../../lower/ir/printer.ts";
import { LoweringError } from "../../lower/passes/errors.ts";
import { PASSES, STAGE_NAMES, lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import { verifyDeviceIR } from "../../lower/passes/verify.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { matmulTiled } from "./kernels.ts";
import { deviceError, expectDeviceMatches, matmulGpu, matmulRef, rmsNormGpu, rmsNormRef } from "./helpers.ts";

const ALL: Target[] = [TARGETS.sm_90, TARGETS.gfx1100, TARGETS.gfx942, TARGETS.vulkan, TARGETS.cpu];

describe("the lowering pipeline", () => {
  it("is an explicit ordered list of named passes", () => {
    expect(STAGE_NAMES).toEqual([
      "launch",
      "cross_thread_reduction",
      "disjoint_writes",
      "thread_guards",
      "single_writer",
      "compact_local",
      "flatten",
      "vectorize",
      "barriers",
      "hoist_guards",
      "unroll",
      "simplify",
      "dependency_wait",
      "verify",
    ]);
    expect(PASSES.every((p) => typeof p.run === "function")).toBe(true);
  });

  it("dumps any stage by name, and stops where asked", () => {
    const f = rmsNormGpu({ threads: 32 }).func;
    const stages = lowerStages(f, TARGETS.sm_90, "thread_guards");
    expect(stages.map((s) => s.name)).toEqual([
      "input",
      "launch",
      "cross_thread_reduction",
      "disjoint_writes",
      "thread_guards",
    ]);
    const dumps: string[] = [];
    lowerToDevice(f, TARGETS.sm_90, {
      dump: ["flatten"],
      onDump: (stage, text) => dumps.push(`${stage}\n${text}`),
    });
    expect(dumps).toHaveLength(1);
    expect(dumps[0]).toMatch(
      /^flatten\n\/\/ launch: grid \[m, 1, 1\], block \[32, 1, 1\], warp 32, shared 0 bytes/,
    );
    expect(() => lowerStages(f, TARGETS.sm_90, "codegen")).toThrow(
      /no stage named "codegen"; the stages are launch, cross_thread_reduction/,
    );
  });

  it("lowers a GPU matmul schedule (blocks, threads, shared tiles, unrolled k) that matches the plain kernel", () => {
    const f = matmulGpu().func;
    for (const target of ALL) {
      const device = lowerToDevice(f, target);
      for (const [syms, seed] of [
        [{ m: 13, n: 11, k: 19 }, 1],
        [{ m: 5, n: 17, k: 3 }, 2],
      ] as const)
        expectDeviceMatches(matmulRef(), device, syms, { seed, tol: 1e-6 });
    }
  });

  it("prints the lowered matmul (golden)", () => {
    expect(printFunc(lowerToDevice(matmulGpu().func, TARGETS.sm_90))).toMatchInlineSnapshot(`
      "// launch: grid [idiv(n + 7, 8), idiv(m + 7, 8), 1], block [8, 8, 1], warp 32, shared 512 bytes
      function matmulTiled(a: Tensor<f32, [m, k]>, b: Tensor<f32, [k, n]>, c: Tensor<f32, [m, n]>) {
        waitForPreviousGrid();
        launchDependents();
        const by = block_id(1);
        const bx = block_id(0);
        const As = shared(f32, [64]);
        const Bs = shared(f32, [64]);
        const acc = local(f32, [1]);
        acc[0] = f32(0);
        for (let ko = 0; ko < idiv(k + 7, 8); ko++) {
          const ty1 = thread_id(1);
          const tx1 = thread_id(0);
          syncThreads();
          As[ty1 * 8 + tx1] = select(by * 8 + ty1 < m && ko * 8 + tx1 < k, a[(by * 8 + ty1) * k + (ko * 8 + tx1)], f32(0));
          Bs[ty1 * 8 + tx1] = select(ko * 8 + ty1 < k && bx * 8 + tx1 < n, b[(ko * 8 + ty1) * n + (bx * 8 + tx1)], f32(0));
          const ty2 = thread_id(1);
          const tx2 = thread_id(0);
          syncThreads();
          acc[0] = acc[0] + As[ty2 * 8] * Bs[tx2];
          acc[0] = acc[0] + As[ty2 * 8 + 1] * Bs[tx2 + 8];
          acc[0] = acc[0] + As[ty2 * 8 + 2] * Bs[tx2 + 16];
          acc[0] = acc[0] + As[ty2 * 8 + 3] * Bs[tx2 + 24];
          acc[0] = acc[0] + As[ty2 * 8 + 4] * Bs[tx2 + 32];
          acc[0] = acc[0] + As[ty2 * 8 + 5] * Bs[tx2 + 40];
          acc[0] = acc[0] + As[ty2 * 8 + 6] * Bs[tx2 + 48];
          acc[0] = acc[0] + As[ty2 * 8 + 7] * Bs[tx2 + 56];
        }
        const ty3 = thread_id(1);
        const tx3 = thread_id(0);
        if (by * 8 + ty3 < m && bx * 8 + tx3 < n) {
          c[(by * 8 + ty3) * n + (bx * 8 + tx3)] = acc[0];
        }
      }
      "
    `);
  });

  it("lowers a row reduction with a cross-thread reduction on every target", () => {
    for (const target of ALL)
      for (const p of [
        { threads: 64 },
        { threads: 32, outThreads: 16 },
        { threads: 16, outThreads: 64 },
        { threads: 16, rowsPerBlock: 2 },
        { threads: 24 },
        { threads: 64, serialRows: 3 },
      ]) {
        const device = lowerToDevice(rmsNormGpu(p).func, target);
        for (const syms of [
          { m: 3, n: 77 },
          { m: 5, n: 7 },
        ])
          expectDeviceMatches(rmsNormRef(), device, syms, { scalars: { eps: 0.01 }, tol: 2e-6 });
      }
  });

  it("syncs before a row's partials overwrite the previous row's shared scratch", () => {
    const text = printFunc(lowerToDevice(rmsNormGpu({ threads: 64, serialRows: 3 }).func, TARGETS.sm_90));
    expect(text).toMatch(
      /shfl_xor\(ss_partial\[0\], 1, 32\);\n\s+syncThreads\(\);\n\s+if \(floormod\(thread_id\(0\), 32\) == 0\) \{/,
    );
  });

  it("prints the lowered row reduction (golden)", () => {
    expect(printFunc(lowerToDevice(rmsNormGpu({ threads: 64 }).func, TARGETS.sm_90))).toMatchInlineSnapshot(`
      "// launch: grid [m, 1, 1], block [64, 1, 1], warp 32, shared 8 bytes
      function rmsNormRows(x: Tensor<f32, [m, n]>, w: Tensor<f32, [n]>, y: Tensor<f32, [m, n]>, eps: f32) {
        waitForPreviousGrid();
        launchDependents();
        const i = block_id(0);
        const ss = local(f32, [1]);
        ss[0] = f32(0);
        const ss_partial = local(f32, [1]);
        ss_partial[0] = f32(0);
        const k_0 = thread_id(0);
        for (let k_1_1 = 0; k_1_1 < floordiv(n + 63, 64); k_1_1++) {
          if (k_0 * floordiv(n + 63, 64) + k_1_1 < n) {
            ss_partial[0] = ss_partial[0] + x[i * n + (k_0 * floordiv(n + 63, 64) + k_1_1)] * x[i * n + (k_0 * floordiv(n + 63, 64) + k_1_1)];
          }
        }
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
        ss_partial[0] = ss_partial[0] + ss_shared[1];
        ss[0] = ss[0] + ss_partial[0];
        const r = rsqrt(ss[0] / f32(n) + eps);
        for (let k_1_0 = 0; k_1_0 < floordiv(n + 63, 64); k_1_0++) {
          const k_1_1_1 = thread_id(0);
          if (k_1_0 * 64 + k_1_1_1 < n) {
            y[i * n + (k_1_0 * 64 + k_1_1_1)] = x[i * n + (k_1_0 * 64 + k_1_1_1)] * r * w[k_1_0 * 64 + k_1_1_1];
          }
        }
      }
      "
    `);
  });

  it("refuses shared memory over the target's limit, saying the bytes and the limit", () => {
    const f = matmulGpu().func;
    const small: Target = { ...TARGETS.vulkan, name: "tiny", maxSharedMemoryBytes: 256 };
    expect(() => lowerToDevice(f, small)).toThrow(LoweringError);
    expect(() => lowerToDevice(f, small)).toThrow(
      "tkc lower: flatten: the block allocates 512 bytes of shared memory (As 256, Bs 256), over tiny's limit of 256 bytes per block",
    );
  });

  it("refuses more threads per block than the target allows", () => {
    const s = Schedule.of(matmulTiled);
    s.bind("ty", "threadIdx.y");
    s.bind("tx", "threadIdx.x");
    const few: Target = { ...TARGETS.sm_90, name: "few", maxThreadsPerBlock: 32 };
    expect(() => lowerToDevice(s.func, few)).toThrow(
      "tkc lower: launch: 64 threads per block (threadIdx.x 8 × threadIdx.y 8 × threadIdx.z 1) exceed few's limit of 32",
    );
    expect(() => lowerToDevice(rmsNormGpu({ threads: 2048 }).func, TARGETS.gfx942)).toThrow(
      /2048 threads per block .* exceed gfx942's limit of 1024/,
    );
  });

  it("gives the unlowered schedule wrong answers on the device model (each pass matters)", () => {
    const stages = lowerStages(rmsNormGpu({ threads: 64 }).func, TARGETS.sm_90);
    const err = (name: string): number =>
      deviceError(
        rmsNormRef(),
        stages.find((s) => s.name === name)!.func,
        { m: 2, n: 50 },
        { scalars: { eps: 0.01 } },
      );
    expect(err("launch")).toBeGreaterThan(0.1); // every thread keeps its own partial sum
    expect(err("cross_thread_reduction")).toBeLessThan(1e-6);
  });

  it("checks the device IR contract at the end", () => {
    const f = matmulGpu().func;
    expect(() => verifyDeviceIR(f)).toThrow("tkc lower: verify: matmulTiled has no launch configuration");
    const flat = lowerStages(f, TARGETS.sm_90, "flatten").at(-1)!.func;
    expect(() => verifyDeviceIR(flat)).toThrow("tkc lower: verify: loop ki is still unrolled");
    const guarded = lowerStages(f, TARGETS.sm_90, "thread_guards").at(-1)!.func;
    expect(() => verifyDeviceIR(guarded)).toThrow("tkc lower: verify: allocation As is not one-dimensional");
    expect(() => verifyDeviceIR(lowerToDevice(f, TARGETS.sm_90))).not.toThrow();
  });
});
