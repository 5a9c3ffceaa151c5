/**
 * tensorize (lower/schedule/tensorize.ts) and the tensor-core GEMMs (stdlib/gemm_mma.ts): the
 * tensorized functions run on the CPU emulation of device IR (which computes each mma.m16n8k16
 * from the 32 lanes' fragments) and must equal the unscheduled kernels; nests that are not the
 * instruction's layout are refused; the PTX has one mma.sync per 16 x 8 x 16 product.
 */
import { describe, expect, it } from "vitest";
import type { KernelDef } from "../../dsl/kernel.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import { renderLLVM } from "../../backends/llvm/render.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule, ScheduleError, TargetUnsupportedError, replay } from "../../lower/schedule/index.ts";
import { f16Gemm } from "../../stdlib/f16_gemv.ts";
import {
  f16GemmMma,
  q4GateUpSiluGemmMma,
  q4GemmMma,
  q4GemmResidualMma,
  q4QkvGemmMma,
  q4QkvRopeAppendGemmMma,
} from "../../stdlib/gemm_mma.ts";
import { kvAppend } from "../../stdlib/kv_cache.ts";
import { ropeHalf } from "../../stdlib/rope.ts";
import { zeros, type NDArray } from "../../dsl/ndarray.ts";
import { q4GateUpSiluGemm, q4GemmResidual, q4QkvGemm } from "../../stdlib/q4_fused_gemm.ts";
import { MMA_GEMM_SCHEDULE, mmaGemmSchedule } from "../../stdlib/gpu/gemm.ts";
import { q4Gemm } from "../../stdlib/q4_gemv.ts";
import {
  mmaTile,
  mmaTileF32,
  mmaTileFragments,
  mmaTileFragmentsWrong,
  mmaTileShared,
  mmaTileSharedOddRows,
  mmaTileWrongLayout,
} from "./mma_kernels.ts";
import { runBoth } from "./emulation.ts";
import { llvmMissing } from "../backends/llvm/helpers.ts";

function tileSchedule(k: KernelDef): Schedule {
  const s = Schedule.of(k);
  s.bind("lane", "threadIdx.x");
  return s;
}

describe("tensorize mma_m16n8k16", () => {
  it("replaces the lane-by-lane nest with four fields of one product, which the emulation computes", () => {
    const s = tileSchedule(mmaTile);
    s.tensorize("r", "mma_m16n8k16", "lane");
    const text = printFunc(s.func);
    expect(text.match(/mma_m16n8k16\(/g)?.length).toBe(4);
    expect(text).not.toContain("for (let kk");
    const { want, got } = runBoth(mmaTile, s, {});
    // One warp's product in f32, summed in increasing k: the same sums as the loop.
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
  });

  it("takes operands already in registers (fragments) and passes each lane's own registers", () => {
    const s = Schedule.of(mmaTileFragments);
    s.bind("lf", "threadIdx.x");
    s.bind("lane", "threadIdx.x");
    s.tensorize("r", "mma_m16n8k16", "lane");
    const text = printFunc(s.func);
    expect(text.match(/mma_m16n8k16\(/g)?.length).toBe(4);
    // Register j of this lane, both elements: af[lane][0], element 0 and 1, ...
    expect(text).toContain("unpack_f16x2(af[lane][3], 1)");
    expect(text).toContain("unpack_f16x2(bf[lane][1], 0)");
    const { want, got } = runBoth(mmaTileFragments, s, {});
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
    // The unscheduled fragment kernel computes what mmaTile computes.
    const plain = runBoth(mmaTile, tileSchedule(mmaTile), {});
    const args = randomArgs(lowerKernel(mmaTileFragments), {}, 3);
    cpuKernel(mmaTileFragments)(args as never);
    expect(compareResults(plain.want, args, 0).mismatches).toEqual([]);
  });

  it("refuses fragments read from the wrong register", () => {
    const s = Schedule.of(mmaTileFragmentsWrong);
    s.bind("lane", "threadIdx.x");
    expect(() => s.tensorize("r", "mma_m16n8k16", "lane")).toThrow(
      /is not the A fragment layout of mma.m16n8k16: element \(\d+, \d+\) of A is lane \d+, register \d+/,
    );
  });

  it("refuses a nest that computes the product in another layout", () => {
    const s = tileSchedule(mmaTileWrongLayout);
    expect(() => s.tensorize("r", "mma_m16n8k16", "lane")).toThrow(/is not the B layout/);
  });

  it("refuses f32 operands, an unbound lane loop and unknown intrinsics", () => {
    const f32s = tileSchedule(mmaTileF32);
    expect(() => f32s.tensorize("r", "mma_m16n8k16", "lane")).toThrow(/f16/);
    const unbound = Schedule.of(mmaTile);
    expect(() => unbound.tensorize("r", "mma_m16n8k16", "lane")).toThrow(
      /bound to threadIdx.x over exactly 32 lanes/,
    );
    const s = tileSchedule(mmaTile);
    expect(() => s.tensorize("r", "wmma" as never, "lane")).toThrow(ScheduleError);
    expect(() => s.tensorize("kk", "mma_m16n8k16", "lane")).toThrow(/loop from 0 to 4/);
  });

  it("reads an operand tile in shared memory with ldmatrix; the lowering refuses rows that are not 16-byte multiples", () => {
    const scheduled = (k: KernelDef) => {
      const s = Schedule.of(k);
      s.bind("lc", "threadIdx.x");
      s.bind("lane", "threadIdx.x");
      s.tensorize("r", "mma_m16n8k16", "lane");
      return s;
    };
    const s = scheduled(mmaTileShared);
    const text = printFunc(s.func);
    // A's eight halves in each of the product's four fields, from one x4 load (registers 0..3).
    expect(text.match(/ldmatrix\(as\[/g)?.length).toBe(32);
    expect(new Set(text.match(/ldmatrix\(as\[[^\n]*?\], 4, \d\)/g)).size).toBe(4);
    expect(text).not.toContain("ldmatrix(b[");
    const { want, got } = runBoth(mmaTileShared, s, {});
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
    const t = { kind: "nvptx", arch: "sm_90" } as const;
    if (llvmMissing === "")
      expect(compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), t).text, t).ptx).toMatch(
        /ldmatrix\.sync\.aligned\.m8n8\.x4\.shared\.b16/,
      );
    const odd = scheduled(mmaTileSharedOddRows);
    expect(() => lowerToDevice(odd.func, TARGETS.sm_90)).toThrow(
      /rows of as \(20 halves\) must be a multiple of 8 halves long: pad them with storageAlign/,
    );
  });

  it("is recorded in the trace and replays", () => {
    const s = tileSchedule(mmaTile);
    s.tensorize("r", "mma_m16n8k16", "lane");
    expect(s.trace.steps.at(-1)).toMatchObject({ op: "tensorize", args: ["r", "mma_m16n8k16", "lane"] });
    expect(printFunc(replay(lowerKernel(mmaTile), s.trace).func)).toBe(printFunc(s.func));
  });
});

describe("tensor-core GEMMs (stdlib/gemm_mma.ts)", () => {
  // Odd M and N: the last tiles read clamped rows and store nothing past the edge.
  const cases: [string, KernelDef, KernelDef, Record<string, number>][] = [
    // Three groups: the last stage of two holds one group and one scaled by 0.
    ["q4GemmMma", q4GemmMma, q4Gemm, { m: 19, n: 70, k: 96, kw: 12, kg: 3 }],
    ["f16GemmMma", f16GemmMma, f16Gemm, { m: 19, n: 70, k: 40 }],
    // The epilogues: residual added to the f16 product; gate and up tiles paired in each warp
    // (I = 40: the last block's gate rows past I read up rows, their outputs are not stored).
    ["q4GemmResidualMma", q4GemmResidualMma, q4GemmResidual, { m: 19, n: 70, k: 96, kw: 12, kg: 3 }],
    [
      "q4GateUpSiluGemmMma",
      q4GateUpSiluGemmMma,
      q4GateUpSiluGemm,
      { m: 19, n2: 80, i: 40, k: 64, kw: 8, kg: 2 },
    ],
    // Q, K and V tiles: 16 + 2 x 24 outputs, blocks that straddle q, k and v.
    ["q4QkvGemmMma", q4QkvGemmMma, q4QkvGemm, { m: 19, n: 64, qd: 16, kvd: 24, k: 64, kw: 8, kg: 2 }],
  ];
  for (const [name, k, reference, symbols] of cases) {
    it(`${name} tensorized for sm_90 equals the unscheduled kernel on the device emulation`, () => {
      const s = Schedule.of(k);
      mmaGemmSchedule()(s, "sm_90");
      expect(printFunc(s.func)).toContain("mma_m16n8k16(");
      const { want, got } = runBoth(k, s, symbols);
      expect(compareResults(want, got, 0).mismatches).toEqual([]);
    });

    it(`${name} unscheduled agrees with ${reference.name}`, () => {
      const plain = lowerKernel(k);
      const args = randomArgs(plain, symbols, 5);
      const a = cloneArgs(args);
      const b = cloneArgs(args);
      cpuKernel(plain)(a as never);
      cpuKernel(lowerKernel(reference))(b as never);
      // f16GemmMma: the same sums; q4GemmMma rounds each weight to f16 (MLC's q4f16_1), q4Gemm
      // scales each group's exact sum once.
      expect(compareResults(b, a, name === "f16GemmMma" ? 0 : 2e-3).mismatches).toEqual([]);
    });
  }

  it("q4QkvRopeAppendGemmMma: tensorized equals unscheduled on the emulation, which equals q4QkvGemmMma, ropeHalf and kvAppend", () => {
    // Two q heads and one k/v head of 64 (32 rotation pairs: one block a head), 19 tokens from 5.
    const symbols = { m: 19, k: 64, kw: 8, kg: 2, h: 2, kvh: 1, d: 64, ctx: 30, n: 4 * 64 };
    const plain = lowerKernel(q4QkvRopeAppendGemmMma);
    const args = randomArgs(plain, symbols, 7, { start: 5, theta: 10000 });
    const want = cloneArgs(args);
    const got = cloneArgs(args);
    cpuKernel(plain)(want as never);
    // Heads specialized, as the model's operations are: the bind's race check then sees that
    // dims i and i + D / 2 of a head are different elements.
    const s = new Schedule(specialize(plain, { h: 2, kvh: 1, d: 64 }));
    mmaGemmSchedule()(s, "sm_90");
    cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90))(got as never);
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
    // The three launches it replaces.
    const arr = (name: string) => args[name] as NDArray;
    const q = zeros("f16", [19, 128]);
    const k = zeros("f16", [19, 64]);
    const v = zeros("f16", [19, 64]);
    cpuKernel(q4QkvGemmMma)({ x: arr("x"), packed: arr("packed"), scales: arr("scales"), q, k, v } as never);
    const view = (a: NDArray, shape: number[]): NDArray => ({ ...a, shape });
    const qr = zeros("f16", [19, 2, 64]);
    const kr = zeros("f16", [19, 1, 64]);
    cpuKernel(ropeHalf)({ x: view(q, [19, 2, 64]), y: qr, offset: 5, theta: 10000 } as never);
    cpuKernel(ropeHalf)({ x: view(k, [19, 1, 64]), y: kr, offset: 5, theta: 10000 } as never);
    const caches = cloneArgs({ kCache: arr("kCache"), vCache: arr("vCache") });
    cpuKernel(kvAppend)({ k: kr, v: view(v, [19, 1, 64]), ...caches, pos: 5 } as never);
    expect(
      compareResults({ qr, ...caches }, { qr: want.qr!, kCache: want.kCache!, vCache: want.vCache! }, 0)
        .mismatches,
    ).toEqual([]);
    // A head size the schedule cannot see, or not a multiple of 64, is refused, naming the others.
    for (const f of [plain, specialize(plain, { d: 32 })])
      expect(() => mmaGemmSchedule()(new Schedule(f), "sm_90")).toThrow(
        /needs the head size specialized to a multiple of 64 \((d|32)\); use q4QkvGemmMma with ropeHalf and kvAppend/,
      );
  });

  it("reads operand tiles staged in shared memory with ldmatrix: x4 for A, x2 for B", () => {
    const q4 = Schedule.of(q4GemmMma);
    mmaGemmSchedule()(q4, "sm_90");
    const q4Text = printFunc(q4.func);
    // x's tile in shared memory (A); the weights are register fragments (B).
    expect(q4Text).toMatch(/ldmatrix\(xs\[[^\n]*, 4, 3\)/);
    expect(q4Text).not.toMatch(/ldmatrix\([^\n]*, 2, /);
    const f16 = Schedule.of(f16GemmMma);
    mmaGemmSchedule()(f16, "sm_90");
    const f16Text = printFunc(f16.func);
    expect(f16Text).toMatch(/ldmatrix\([^\n]*, 4, 0\)/);
    expect(f16Text).toMatch(/ldmatrix\([^\n]*, 2, 1\)/);
    // Operands read from global memory keep their lane-by-lane loads.
    const tile = tileSchedule(mmaTile);
    tile.tensorize("r", "mma_m16n8k16", "lane");
    expect(printFunc(tile.func)).not.toContain("ldmatrix(");
  });

  it("stages each K stage behind barriers: the copy steps write different elements (disjoint_writes); with doubleBuffer into the half of the tiles the previous stage's products do not read", () => {
    const barriers = (k: KernelDef, doubleBuffer: { q4: boolean; f16: boolean }) => {
      const s = Schedule.of(k);
      mmaGemmSchedule({ ...MMA_GEMM_SCHEDULE, doubleBuffer })(s, "sm_90");
      return printFunc(lowerToDevice(s.func, TARGETS.sm_90)).match(/syncThreads\(\)/g)?.length;
    };
    // One before the copies (the previous step's readers), one before the products read them;
    // double-buffered, only the second.
    expect(barriers(q4GemmMma, { q4: false, f16: false })).toBe(2);
    expect(barriers(q4GemmMma, { q4: true, f16: false })).toBe(1);
    expect(barriers(f16GemmMma, { q4: false, f16: false })).toBe(2);
    expect(barriers(f16GemmMma, { q4: false, f16: true })).toBe(1);
    const doubled = Schedule.of(q4GemmMma);
    mmaGemmSchedule({ ...MMA_GEMM_SCHEDULE, doubleBuffer: { q4: true, f16: true } })(doubled, "sm_90");
    const { want, got } = runBoth(q4GemmMma, doubled, { m: 19, n: 70, k: 96, kw: 12, kg: 3 });
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
  });

  it("elsewhere keeps f16GemmMma's per-lane multiply-adds (no tensorize) with the same results", () => {
    const s = Schedule.of(f16GemmMma);
    mmaGemmSchedule()(s, "gfx1100");
    expect(printFunc(s.func)).not.toContain("mma_m16n8k16(");
    const { want, got } = runBoth(f16GemmMma, s, { m: 5, n: 9, k: 40 });
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
  });

  it("refuses q4GemmMma (B operands in the instruction's registers) where there is no mma", () => {
    for (const target of ["gfx1100", "vulkan", "sm_75"])
      expect(() => mmaGemmSchedule()(Schedule.of(q4GemmMma), target)).toThrow(TargetUnsupportedError);
  });

  it.skipIf(llvmMissing !== "")(
    "compiles to one mma.sync per product and one ldmatrix per A fragment",
    () => {
      // K specialized, as the model's operations are (the loads' widths follow from it).
      const s = new Schedule(specialize(lowerKernel(q4GemmMma), { n: 4096, k: 4096, kw: 512, kg: 128 }));
      mmaGemmSchedule()(s, "sm_90");
      const t = { kind: "nvptx", arch: "sm_90" } as const;
      const ptx = compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), t).text, t).ptx!;
      // Per stage of two groups: 4 K steps x 4 x 4 tiles per warp.
      expect(ptx.match(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32/g)?.length).toBe(64);
      expect(ptx).not.toMatch(/ld\.shared/);
      // Only x passes through shared memory: an ldmatrix.x4 (A's four registers) per K step of 16
      // (4) and tile along M (4).
      expect(ptx.match(/ldmatrix\.sync\.aligned\.m8n8\.x4\.shared\.b16/g)?.length).toBe(16);
      // Each lane loads its two words of a weight row's stage once (8 bytes), x in 16-byte chunks.
      expect(ptx.match(/ld\.global\.v2\.u32/g)?.length).toBe(4);
      expect(ptx.match(/ld\.global\.v4\.b32/g)?.length).toBe(8);
    },
  );

  it("refuses to render the product for AMD GPUs", () => {
    const s = tileSchedule(mmaTile);
    s.tensorize("r", "mma_m16n8k16", "lane");
    const device = lowerToDevice(s.func, TARGETS.sm_90);
    expect(() => renderLLVM(device, { kind: "amdgcn", arch: "gfx1100" })).toThrow(
      /needs NVIDIA sm_80 or later/,
    );
  });
});
