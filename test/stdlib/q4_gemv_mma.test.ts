/**
 * The tensor-core GEMVs (stdlib/q4_gemv_mma.ts): unscheduled, they compute what the four-rows
 * kernels compute (the same exact products and per-group f32 sums, added in another order);
 * scheduled for sm_90 and run on the CPU emulation of the device (which forms each mma.m16n8k16
 * from the 32 lanes' registers) they equal their unscheduled selves bit for bit, in each variant
 * of warps and rows per block; shapes they cannot tile are refused; the PTX has one mma.sync per
 * product and one f16x2 instruction per decoded pair.
 */
import { describe, expect, it } from "vitest";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import { compileOp } from "../../llama/device/compile.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import * as S from "../../stdlib/index.ts";
import { q4GemvMmaSchedule } from "../../stdlib/gpu/gemv.ts";
import { TargetUnsupportedError } from "../../lower/schedule/index.ts";
import { llvmMissing } from "../backends/llvm/helpers.ts";

const plain = { n: 64, k: 768, kw: 96, kg: 24 };
const pairs = { n2: 64, i: 32, k: 768, kw: 96, kg: 24 };
const CASES: [KernelDef, KernelDef, Record<string, number>][] = [
  [S.q4GemvMma, S.q4GemvRows4, plain],
  [S.q4GemvResidualMma, S.q4GemvResidualRows4, plain],
  [S.q4GemvF32Mma, S.q4GemvF32Rows4, plain],
  [S.q4GateUpSiluMma, S.q4GateUpSiluRows2, pairs],
  [S.q4GemvRmsMma, S.q4GemvRows4Rms, plain],
  [S.q4GateUpSiluRmsMma, S.q4GateUpSiluRms, pairs],
];
const VARIANTS: Readonly<Record<string, number>>[] = [
  { WARPS: 8, MMA_ROWS: 32, TILES: 2 },
  { WARPS: 16, MMA_ROWS: 16, TILES: 1 },
  { WARPS: 4, MMA_ROWS: 32, TILES: 2 },
  // Weights staged through a ring in shared memory by asynchronous copies (which the emulation
  // lands only at the waits): refilled (3 rounds, 2 slots; 2 rounds, 1 slot) and not (1 round, 3).
  { WARPS: 1, MMA_ROWS: 16, TILES: 1, STAGES: 2 },
  { WARPS: 2, MMA_ROWS: 32, TILES: 2, STAGES: 1 },
  { WARPS: 4, MMA_ROWS: 32, TILES: 2, STAGES: 3 },
];

const spec = (kernel: KernelDef, specialize: Record<string, number>, unrollChunks = 1): OpSpec => ({
  key: kernel.name,
  kernel,
  specialize,
  schedule: q4GemvMmaSchedule({ unrollChunks }),
});

function run(f: Parameters<typeof compileCpu>[0], args: ReturnType<typeof randomArgs>) {
  const out = cloneArgs(args);
  compileCpu(f)(out);
  return out;
}

describe("tensor-core q4f16_1 GEMVs", () => {
  for (const [kernel, reference, sizes] of CASES) {
    it(`${kernel.name} unscheduled agrees with ${reference.name}`, () => {
      const ref = specializedFunc({ key: "r", kernel: reference, specialize: sizes });
      const args = randomArgs(ref, {}, 5);
      const want = run(ref, args);
      // Every variant: the gate/up kernels' blocks of one tile (8 gate rows and their 8 up rows)
      // as well as two.
      for (const consts of VARIANTS) {
        const got = run(specializedFunc(spec(withConsts(kernel, consts), sizes)), args);
        // The same products and group sums in another f32 order: outputs within an f16 rounding.
        expect(compareResults(want, got, 2e-3).mismatches, JSON.stringify(consts)).toEqual([]);
      }
    });

    it(`${kernel.name} on the device emulation equals its unscheduled self in every variant`, () => {
      for (const consts of VARIANTS) {
        for (const unroll of [1, 2]) {
          const sp = spec(withConsts(kernel, consts), sizes, unroll);
          const reference = specializedFunc(sp);
          const args = randomArgs(reference, {}, 9);
          const want = run(reference, args);
          const got = cloneArgs(args);
          cpuDeviceKernel(lowerToDevice(scheduledFunc(sp, "sm_90"), TARGETS.sm_90!))(got as never);
          expect(compareResults(want, got, 0).mismatches, JSON.stringify(consts)).toEqual([]);
        }
      }
    });
  }

  for (const [fused, projection] of [
    [S.q4QkvRopeAppendMma, S.q4GemvMma],
    [S.q4QkvRopeAppendRmsMma, S.q4GemvRmsMma],
  ] as [KernelDef, KernelDef][])
    it(`${fused.name} equals ${projection.name} then ropeHalfAppend, and runs so on the device emulation in every variant`, () => {
      // 2 q heads, 1 kv head of 32: rows 0..63 q, 64..95 k, 96..127 v.
      const [h, kvh, d, ctx, pos] = [2, 1, 32, 6, 4];
      const n = (h + 2 * kvh) * d;
      const sizes = { n, k: 512, kw: 64, kg: 16, h, kvh, d, ctx };
      const f = specializedFunc(spec(fused, sizes));
      const args = randomArgs(f, {}, 13, { pos, theta: 10000, eps: 1e-5 });
      const want = cloneArgs(args);
      // The two-launch reference: the projection, then RoPE and the append.
      const qkv = { dtype: "f16", shape: [n], data: new Uint16Array(n) } as const;
      compileCpu(
        specializedFunc({ key: "p", kernel: projection, specialize: { n, k: 512, kw: 64, kg: 16 } }),
      )({
        x: want.x!,
        ...(want.wn ? { wn: want.wn, eps: 1e-5 } : {}),
        packed: want.packed!,
        scales: want.scales!,
        y: qkv,
      } as never);
      const view = (off: number, heads: number) => ({
        dtype: "f16",
        shape: [heads, d],
        data: qkv.data.subarray(off * d, (off + heads) * d),
      });
      compileCpu(
        specializedFunc({ key: "r", kernel: S.ropeHalfAppend, specialize: { hqk: h + kvh, h, kvh, d, ctx } }),
      )({
        qk: view(0, h + kvh),
        v: view(h + kvh, kvh),
        qr: want.qr!,
        kCache: want.kCache!,
        vCache: want.vCache!,
        pos,
        theta: 10000,
      } as never);
      const got = run(f, args);
      // The same projections (their f32 sums in another order), rounded and rotated alike.
      expect(compareResults(want, got, 2e-3).mismatches).toEqual([]);
      // KV_PREFETCH adds L2 prefetches of the cache rows before pos: hints, no effect on results.
      for (const consts of [...VARIANTS, { ...VARIANTS[1]!, KV_PREFETCH: 1 }]) {
        const sp = spec(withConsts(fused, consts), sizes, 2);
        const reference = run(specializedFunc(sp), args);
        const dev = cloneArgs(args);
        cpuDeviceKernel(lowerToDevice(scheduledFunc(sp, "sm_90"), TARGETS.sm_90!))(dev as never);
        expect(compareResults(reference, dev, 0).mismatches, JSON.stringify(consts)).toEqual([]);
      }
      // The epilogue (rotations and stores) in warp 0 alone (hoist_guards): the other warps skip it
      // rather than compute every row and store none (0.5% of the 7B decode step on an H200).
      const device = printFunc(lowerToDevice(scheduledFunc(spec(fused, sizes), "sm_90"), TARGETS.sm_90!));
      expect(device).toMatch(/syncThreads\(\);\s+if \(thread_id\(1\) == 0\) \{\s+if \(ro < 16\) \{/);
    });

  it("the RoPE kernels refuse blocks of more pairs than half a head holds", () => {
    const sizes = { n: 64, k: 512, kw: 64, kg: 16, h: 1, kvh: 1, d: 16, ctx: 6 };
    expect(() =>
      scheduledFunc(spec(withConsts(S.q4QkvRopeAppendRmsMma, VARIANTS[0]!), sizes), "sm_90"),
    ).toThrow(/d \/ 2 = 8 is not a multiple of 16/);
  });

  it("refuses targets without the instruction and weights it cannot tile, naming the kernels that can", () => {
    for (const target of ["vulkan", "gfx1100", "sm_75"]) {
      // Its own error class: build-checks skips such kernels for such targets by it.
      expect(() => scheduledFunc(spec(S.q4GemvMma, plain), target)).toThrow(TargetUnsupportedError);
      expect(() => scheduledFunc(spec(S.q4GemvMma, plain), target)).toThrow(
        new RegExp(
          `need NVIDIA sm_80 or later \\(mma.m16n8k16\\); ${target} has none: use the four-rows kernels`,
        ),
      );
    }
    expect(() => scheduledFunc(spec(S.q4GemvMma, { n: 48, k: 768, kw: 96, kg: 24 }), "sm_90")).toThrow(
      /N = 48 rows is not a multiple of 32 \(the rows of a block\): use the four-rows kernels/,
    );
    expect(() => scheduledFunc(spec(S.q4GemvMma, { n: 64, k: 352, kw: 44, kg: 11 }), "sm_90")).toThrow(
      /K = 352 is not a multiple of 256/,
    );
    expect(() =>
      scheduledFunc(spec(S.q4GateUpSiluMma, { n2: 40, i: 20, k: 768, kw: 96, kg: 24 }), "sm_90"),
    ).toThrow(/I = 20 gate\/up pairs is not a multiple of 16/);
  });

  it.skipIf(llvmMissing !== "")(
    "compiles to one mma.sync per product and an f16x2 instruction per decoded pair",
    () => {
      const ptx = compileOp(spec(S.q4GemvMma, { n: 4096, k: 4096, kw: 512, kg: 128 }), "sm_90")
        .image as string;
      // Per chunk of 256: 2 tiles x 2 halves x 4 words x 2 pairs of codes.
      expect(ptx.match(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32/g)).toHaveLength(32);
      expect(ptx.match(/(fma|add)\.rn\.f16x2/g)).toHaveLength(128);
      // Codes (8 per chunk: 2 tiles x 2 rows x 2 halves, for the first round and at the end of
      // each for the next) and x (one per lane, packed into its warp's shared pairs) arrive in
      // 16-byte loads; B's registers from shared memory, a warp barrier (not the block's) between;
      // nothing spills to local memory.
      expect(ptx.match(/ld\.global\.(nc\.)?v4\.(u|b)32/g)).toHaveLength(17);
      // The first round's codes are loaded before the wait for the previous kernel, x after it.
      const wait = ptx.indexOf("griddepcontrol.wait");
      const before = ptx.slice(0, wait);
      expect(wait).toBeGreaterThan(0);
      expect(before.match(/ld\.global\.(nc\.)?v4\.(u|b)32/g)).toHaveLength(8);
      expect(ptx.match(/ld\.shared\.v4\.b16/g)).toHaveLength(16);
      expect(ptx).toMatch(/bar\.warp\.sync/);
      expect(ptx).not.toMatch(/\.local/);
    },
  );
});
