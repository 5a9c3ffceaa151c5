/**
 * Hopper's warpgroup GEMMs (stdlib/gemm_wgmma.ts, tensorize's wgmma_m64n128k16): tensorized, on
 * the CPU emulation of device IR, they equal the unscheduled kernels and their mma.m16n8k16 twins
 * (up to the grouping of f32 sums where K is split); their variants (x copies, prefetches, blocks
 * of one warpgroup, gate/up cut with K split) compute the same; the PTX passes ptxas without
 * serialized products.
 */
import { describe, expect, it } from "vitest";
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import { cloneArgs, compareResults, randomArgs, randomArray, rng } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import { renderLLVM } from "../../backends/llvm/render.ts";
import type { NDArray } from "../../dsl/ndarray.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule, TargetUnsupportedError } from "../../lower/schedule/index.ts";
import {
  q4GateUpSiluGemmMma,
  q4GemmMma,
  q4GemmResidualMma,
  q4QkvGemmMma,
  q4QkvRopeAppendGemmMma,
} from "../../stdlib/gemm_mma.ts";
import { bindWarpsAndLanes, WGMMA_GEMM_SCHEDULE, wgmmaGemmSchedule } from "../../stdlib/gpu/gemm.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import {
  q4GemmResidualWgmma,
  q4GemmWgmma,
  q4QkvGemmWgmma,
  q4QkvRopeAppendGemmWgmma,
} from "../../stdlib/gemm_wgmma.ts";
import {
  gateUpSiluSplitReduce,
  q4GateUpSplitKGemmWgmma,
  q4GateUpSiluGemmWgmma,
} from "../../stdlib/gemm_wgmma_gateup.ts";
import { wgmmaTile, wgmmaTilePlain } from "./mma_kernels.ts";
import { runBoth } from "./emulation.ts";
import { hasTool, llvmMissing, ptxasVerbose } from "../backends/llvm/helpers.ts";

describe("wgmma (stdlib/gemm_wgmma.ts)", () => {
  // Odd M and N (the last tiles clamp their rows and store nothing past the edge), three groups
  // (the last stage holds one group and one scaled by 0).
  const symbols = { m: 19, n: 70, k: 96, kw: 12, kg: 3 };

  for (const [label, params] of [
    ["double-buffered x", WGMMA_GEMM_SCHEDULE],
    ["three x copies", { ...WGMMA_GEMM_SCHEDULE, xCopies: 3 }],
    ["four x copies", { ...WGMMA_GEMM_SCHEDULE, xCopies: 4 }],
    ["one x buffer", { ...WGMMA_GEMM_SCHEDULE, xCopies: 1 }],
  ] as const)
    it(`q4GemmWgmma tensorized (${label}) equals the unscheduled kernel on the device emulation`, () => {
      const s = Schedule.of(q4GemmWgmma);
      wgmmaGemmSchedule(params)(s, "sm_90");
      // One product per K step of the (unrolled) stage, a field per accumulator.
      expect(printFunc(s.func).match(/wgmma_m64n128k16\(/g)?.length).toBe(64);
      const { want, got } = runBoth(q4GemmWgmma, s, symbols);
      expect(compareResults(want, got, 0).mismatches).toEqual([]);
    });

  // Each kernel and its mma.m16n8k16 twin compute the same values, bit for bit; tensorized on the
  // emulation, the same as unscheduled. The fused shapes: a last block whose gate rows past I
  // read up rows; Q, K and V tiles straddled by blocks; two q heads and one k/v head of 128.
  const twins: [string, KernelDef, KernelDef, Record<string, number>, Record<string, number>?][] = [
    ["q4GemmWgmma", q4GemmWgmma, q4GemmMma, symbols],
    ["q4GemmResidualWgmma", q4GemmResidualWgmma, q4GemmResidualMma, symbols],
    [
      "q4GateUpSiluGemmWgmma",
      q4GateUpSiluGemmWgmma,
      q4GateUpSiluGemmMma,
      { m: 19, n2: 160, i: 80, k: 64, kw: 8, kg: 2 },
    ],
    ["q4QkvGemmWgmma", q4QkvGemmWgmma, q4QkvGemmMma, { m: 19, n: 208, qd: 80, kvd: 64, k: 64, kw: 8, kg: 2 }],
    [
      "q4QkvRopeAppendGemmWgmma",
      q4QkvRopeAppendGemmWgmma,
      q4QkvRopeAppendGemmMma,
      { m: 19, n: 512, h: 2, kvh: 1, d: 128, ctx: 24, k: 64, kw: 8, kg: 2 },
      { start: 5, theta: 10000 },
    ],
  ];
  for (const [name, k, twin, sym, scalars] of twins) {
    it(`${name} unscheduled computes what its mma twin computes, bit for bit`, () => {
      const a = randomArgs(lowerKernel(k), sym, 5, scalars);
      const b = cloneArgs(a);
      cpuKernel(lowerKernel(k))(a as never);
      cpuKernel(lowerKernel(twin))(b as never);
      expect(compareResults(b, a, 0).mismatches).toEqual([]);
    });
    if (name !== "q4GemmWgmma")
      it(`${name} tensorized equals the unscheduled kernel on the device emulation`, () => {
        // Heads specialized, as the model's operations are (the bind's race check needs them).
        const s = new Schedule(specialize(lowerKernel(k), scalars ? { h: 2, kvh: 1, d: 128 } : {}));
        wgmmaGemmSchedule()(s, "sm_90");
        const plain = lowerKernel(k);
        const args = randomArgs(plain, sym, 3, scalars);
        const want = cloneArgs(args);
        const got = cloneArgs(args);
        cpuKernel(plain)(want as never);
        cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90))(got as never);
        expect(compareResults(want, got, 0).mismatches).toEqual([]);
      });
  }

  // Whole tiles store through the epilogues' unguarded nests, the rest through the guarded ones.
  for (const [name, k, sym] of [
    ["q4GemmWgmma", q4GemmWgmma, { m: 131, n: 136, k: 64, kw: 8, kg: 2 }],
    ["q4GemmResidualWgmma", q4GemmResidualWgmma, { m: 131, n: 136, k: 64, kw: 8, kg: 2 }],
    ["q4GateUpSiluGemmWgmma", q4GateUpSiluGemmWgmma, { m: 131, n2: 288, i: 144, k: 64, kw: 8, kg: 2 }],
  ] as const)
    it(`${name} tensorized, whole tiles and cut ones, equals the unscheduled kernel on the device emulation`, () => {
      const s = Schedule.of(k);
      wgmmaGemmSchedule()(s, "sm_90");
      const { want, got } = runBoth(k, s, sym);
      expect(compareResults(want, got, 0).mismatches).toEqual([]);
    });

  // prefetchPrefillWeights and prefillWeightsAhead (L2 prefetches, no effect on values) and
  // blocks of one warpgroup (bench/device/build-gemm.ts's variant), plain and paired rows.
  for (const [label, consts] of [
    ["its weight rows prefetched (PREFETCH)", { PREFETCH: 1 }],
    ["one warpgroup a block (WGMMA_GROUPS 1)", { WGMMA_GROUPS: 1 }],
    ["its weight rows' lines prefetched 4 stages ahead (PREFETCH_AHEAD)", { PREFETCH_AHEAD: 4 }],
  ] as const)
    for (const [name, k, sym] of [
      ["q4GemmWgmma", q4GemmWgmma, { m: 19, n: 136, k: 64, kw: 8, kg: 2 }],
      ["q4GateUpSiluGemmWgmma", q4GateUpSiluGemmWgmma, { m: 19, n2: 160, i: 80, k: 64, kw: 8, kg: 2 }],
    ] as const)
      it(`${name} with ${label} equals the unscheduled kernel on the device emulation`, () => {
        const s = Schedule.of(withConsts(k as KernelDef, consts));
        wgmmaGemmSchedule()(s, "sm_90");
        const printed = printFunc(s.func);
        expect(printed.match(/wgmma_m64n128k16\(/g)?.length).toBe(64);
        if (!("WGMMA_GROUPS" in consts)) expect(printed).toMatch(/prefetch/);
        const { want, got } = runBoth(k, s, sym);
        expect(compareResults(want, got, 0).mismatches).toEqual([]);
      });

  // Four groups a K stage (STAGE_GROUPS 4: half the stages, x staged as two tiles of 64-half
  // rows): tensorized, the same as unscheduled, bit for bit (K of 96: one stage whose last group,
  // past K, weighs 0; 288: three stages; whole and cut tiles), and within f32 rounding of two
  // groups a stage (the products of a stage are summed in another order).
  for (const [name, k, sym] of [
    ["q4GemmWgmma", q4GemmWgmma, { m: 19, n: 136, k: 96, kw: 12, kg: 3 }],
    ["q4GemmResidualWgmma", q4GemmResidualWgmma, { m: 131, n: 136, k: 288, kw: 36, kg: 9 }],
    ["q4GateUpSiluGemmWgmma", q4GateUpSiluGemmWgmma, { m: 19, n2: 160, i: 80, k: 256, kw: 32, kg: 8 }],
    ["q4QkvGemmWgmma", q4QkvGemmWgmma, { m: 19, n: 208, qd: 80, kvd: 64, k: 128, kw: 16, kg: 4 }],
  ] as const)
    it(`${name} with four groups a K stage (STAGE_GROUPS 4) tensorized equals the unscheduled kernel, and two groups a stage to f32 rounding`, () => {
      const four = withConsts(k as KernelDef, { STAGE_GROUPS: 4 });
      const s = Schedule.of(four);
      wgmmaGemmSchedule()(s, "sm_90");
      // Eight K steps a stage (twice two groups'), each a product per accumulator field.
      const printed = printFunc(s.func);
      expect(printed).toMatch(/for \(let kt = 0; kt < 8; kt\+\+\)/);
      expect(printed.match(/wgmma_m64n128k16\(/g)?.length).toBe(64);
      const { want, got } = runBoth(four, s, sym);
      expect(compareResults(want, got, 0).mismatches).toEqual([]);
      const two = cloneArgs(randomArgs(lowerKernel(k as KernelDef), sym, 3));
      cpuKernel(lowerKernel(k as KernelDef))(two as never);
      expect(compareResults(two, want, 1e-3).mismatches).toEqual([]);
    });

  it("refuses K stages of other than two or four groups, naming STAGE_GROUPS or the line", () => {
    const s = Schedule.of(withConsts(q4GemmWgmma, { STAGE_GROUPS: 8 }));
    expect(() => wgmmaGemmSchedule()(s, "sm_90")).toThrow(
      /stages 512 rows of x a K stage: its STAGE_GROUPS must be 2 or 4 \(q4 groups of 32 a stage\)/,
    );
    // An odd count: a fraction where the kernel needs an integer, at its line.
    expect(() => Schedule.of(withConsts(q4GemmWgmma, { STAGE_GROUPS: 3 }))).toThrow(
      /stdlib\/gemm_wgmma\.ts:\d+:\d+: this value \(3\.5\) is not an integer but i32 is needed/,
    );
  });

  // prefillGateUpWave's cut (llama/ops.ts): outputs to 128 by q4GateUpSiluGemmWgmma (OUT_TO), the
  // rest (a whole block of 64 and a cut one) by q4GateUpSplitKGemmWgmma in 3 splits of K and
  // gateUpSiluSplitReduce (OUT_FROM).
  describe("q4GateUpSiluGemmWgmma cut at an output, the rest with K split", () => {
    const sym = { m: 19, n2: 368, i: 184, k: 192, kw: 24, kg: 6 };
    const rest = { s: 3, p: 184 - 128 };
    const scheduled = (k: KernelDef, consts: Record<string, number>, specialized: Record<string, number>) => {
      const s = new Schedule(specialize(lowerKernel(withConsts(k, consts)), specialized));
      (k === gateUpSiluSplitReduce ? GPU_SCHEDULES.gateUpSiluSplitReduce! : wgmmaGemmSchedule())(s, "sm_90");
      return cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90));
    };
    const args = randomArgs(lowerKernel(q4GateUpSiluGemmWgmma), sym, 4);
    const partial = () => ({ partial: randomArray("f32", [rest.s, 2, sym.m, rest.p], rng(9)) });

    it("tensorized, each split's sums equal the unscheduled kernel's, bit for bit", () => {
      const splitK = withConsts(q4GateUpSplitKGemmWgmma, { OUT_FROM: 128 });
      const want = { ...cloneArgs(args), ...partial() };
      const got = cloneArgs(want);
      cpuKernel(specialize(lowerKernel(splitK), rest))(want as never);
      scheduled(q4GateUpSplitKGemmWgmma, { OUT_FROM: 128 }, rest)(got as never);
      expect(compareResults(want, got, 0).mismatches).toEqual([]);
    });

    it("the three launches store what the uncut kernel stores, up to the grouping of f32 sums", () => {
      const want = cloneArgs(args);
      cpuKernel(lowerKernel(q4GateUpSiluGemmWgmma))(want as never);
      const got: Record<string, NDArray | number> = { ...cloneArgs(args), ...partial() };
      scheduled(q4GateUpSiluGemmWgmma, { OUT_TO: 128 }, {})(got as never);
      // Before the rest: its outputs still as they were.
      expect(compareResults(want, got, 2e-3).mismatches.length).toBeGreaterThan(0);
      scheduled(q4GateUpSplitKGemmWgmma, { OUT_FROM: 128 }, rest)(got as never);
      scheduled(gateUpSiluSplitReduce, { OUT_FROM: 128 }, { ...rest, i: sym.i })(got as never);
      delete got.partial;
      expect(compareResults(want, got, 2e-3).mismatches).toEqual([]);
    });
  });

  it.skipIf(llvmMissing !== "")(
    "with PREFETCH, two lanes of each warp prefetch its two 8-row ranges of codes and scales before the K loop",
    () => {
      const s = new Schedule(
        specialize(lowerKernel(withConsts(q4GemmWgmma, { PREFETCH: 1 })), {
          n: 4096,
          k: 4096,
          kw: 512,
          kg: 128,
        }),
      );
      wgmmaGemmSchedule()(s, "sm_90");
      const t = { kind: "nvptx", arch: "sm_90" } as const;
      const ptx = compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), t).text, t).ptx!;
      expect(ptx.match(/cp\.async\.bulk\.prefetch\.L2\.global/g)?.length).toBe(2);
      expect(ptx.search(/cp\.async\.bulk\.prefetch/)).toBeLessThan(ptx.search(/wgmma\.mma_async/));
      // Without it, none.
      expect(wgmmaPtx(WGMMA_GEMM_SCHEDULE)).not.toMatch(/prefetch/);
    },
  );

  it("refuses q4QkvRopeAppendGemmWgmma for heads that are not a multiple of 128", () => {
    const s = new Schedule(specialize(lowerKernel(q4QkvRopeAppendGemmWgmma), { h: 2, kvh: 1, d: 64 }));
    expect(() => wgmmaGemmSchedule()(s, "sm_90")).toThrow(/multiple of 128/);
  });

  /** wgmmaTile's threads bound (warps to threadIdx.y, lanes to threadIdx.x). */
  const wgmmaTileSchedule = (k: KernelDef): Schedule => {
    const s = Schedule.of(k);
    bindWarpsAndLanes(s, [
      ["wc", "lc"],
      ["wf", "lf"],
      ["wp", "lane"],
    ]);
    return s;
  };

  it("replaces a warpgroup's lane-by-lane 64 x 128 x 16 nest with one product's 64 fields, which the emulation computes", () => {
    const s = wgmmaTileSchedule(wgmmaTile);
    s.tensorize("nt", "wgmma_m64n128k16", "lane");
    expect(printFunc(s.func).match(/wgmma_m64n128k16\(/g)?.length).toBe(64);
    const { want, got } = runBoth(wgmmaTile, s, {});
    expect(compareResults(want, got, 0).mismatches).toEqual([]);
  });

  it("refuses to lower a wgmma tile padded after tensorize (its descriptor reads 128-byte rows)", () => {
    const s = wgmmaTileSchedule(wgmmaTile);
    s.tensorize("nt", "wgmma_m64n128k16", "lane");
    s.storageAlign("bs", 0, 32, 8);
    expect(() => lowerToDevice(s.func, TARGETS.sm_90)).toThrow(
      /wgmma reads bs as rows of 64 halves .* but its rows are 72 halves: do not pad a wgmma tile with storageAlign/,
    );
  });

  it("refuses a B tile staged row by row (not 128-byte swizzled), naming the layout", () => {
    const s = wgmmaTileSchedule(wgmmaTilePlain);
    expect(() => s.tensorize("nt", "wgmma_m64n128k16", "lane")).toThrow(
      /is not the B layout of wgmma_m64n128k16 .*128-byte swizzled/,
    );
    // The nest itself is right: unscheduled, both tiles give the same product.
    const { want } = runBoth(wgmmaTilePlain, Schedule.of(wgmmaTilePlain), {});
    const other = runBoth(wgmmaTile, Schedule.of(wgmmaTile), {}).want;
    expect(compareResults(want, other, 0).mismatches).toEqual([]);
  });

  it("refuses a nest without whole warpgroups bound, and targets without wgmma", () => {
    const s = Schedule.of(q4GemmWgmma);
    s.bind("lane", "threadIdx.x");
    expect(() => s.tensorize("nt", "wgmma_m64n128k16", "lane")).toThrow(/runs on warpgroups of four warps/);
    for (const target of ["sm_80", "gfx1100", "vulkan"])
      expect(() => wgmmaGemmSchedule()(Schedule.of(q4GemmWgmma), target)).toThrow(TargetUnsupportedError);
  });

  const wgmmaPtx = (params: typeof WGMMA_GEMM_SCHEDULE): string => {
    const s = new Schedule(specialize(lowerKernel(q4GemmWgmma), { n: 4096, k: 4096, kw: 512, kg: 128 }));
    wgmmaGemmSchedule(params)(s, "sm_90");
    const t = { kind: "nvptx", arch: "sm_90" } as const;
    return compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), t).text, t).ptx!;
  };
  /** ptxas -v's report (it writes it, and its warnings, to stderr), after a successful compile. */
  const ptxasLog = (ptx: string): string => {
    const { status, log } = ptxasVerbose(ptx, "sm_90a");
    expect(status, log).toBe(0);
    expect(log).toMatch(/Used \d+ registers/);
    return log;
  };
  const waits = (ptx: string) =>
    [...ptx.matchAll(/wgmma\.wait_group\.sync\.aligned (\d+)/g)].map((m) => Number(m[1]));

  it.skipIf(llvmMissing !== "")(
    "compiles for sm_90a to one wgmma per K step, a fence before each, a commit each, with three x copies no wait at the barrier",
    () => {
      const ptx = wgmmaPtx({ ...WGMMA_GEMM_SCHEDULE, xCopies: 3 });
      expect(ptx).toMatch(/^\.target sm_90a/m);
      expect(ptx.match(/wgmma\.mma_async\.sync\.aligned\.m64n128k16\.f32\.f16\.f16/g)?.length).toBe(4);
      expect(ptx.match(/wgmma\.fence\.sync\.aligned/g)?.length).toBe(4);
      // Each product is a group of its own, committed as issued.
      expect(ptx.match(/wgmma\.commit_group/g)?.length).toBe(4);
      expect(ptx).toMatch(
        /wgmma\.mma_async[^;]*;\s*\}\s*\/\/ end inline asm\s*\/\/ begin inline asm\s*wgmma\.commit_group/,
      );
      // With three copies of x, a stage's products run past the next stage's barrier: the only
      // waits in the loop retire the previous stage's product of a K step before its A registers
      // are rewritten, keeping the three newer products running; one wait for all after the loop.
      expect(waits(ptx)).toEqual([3, 3, 3, 3, 0]);
      const at = (re: RegExp) => ptx.search(re);
      expect(at(/bar\.sync/)).toBeLessThan(at(/wgmma\.wait_group/));
      expect(at(/wgmma\.wait_group/)).toBeLessThan(at(/fma\.rn\.f16x2/));
      // Threads' stores to the x tile are made visible to the instruction's reads before the barrier.
      expect(ptx).toMatch(/fence\.proxy\.async\.shared::cta;\s*\/\/ end inline asm\s*bar\.sync/);
      // The descriptor's tile starts on 1024 bytes (the swizzle is by address bits): three
      // copies of 128 x 64 halves.
      expect(ptx).toMatch(/\.shared \.align 1024 \.b8 \S*xs\S*\[49152\]/);
      // ptxas says so when it has to serialize the products (an accumulator read before the wait).
      if (hasTool("ptxas")) expect(ptxasLog(ptx)).not.toMatch(/serialized/i);
    },
  );

  it.skipIf(llvmMissing !== "")(
    "with four x copies (64 KB), the tile in dynamic shared memory on 1024 bytes, the products two barriers ahead",
    () => {
      const ptx = wgmmaPtx({ ...WGMMA_GEMM_SCHEDULE, xCopies: 4 });
      expect(ptx).toMatch(/\.extern \.shared \.align 1024 \.b8 tkc_dynamic_shared\[\];/);
      expect(ptx).not.toMatch(/\.shared \.align 1024 \.b8 \S*xs/);
      expect(waits(ptx)).toEqual([3, 3, 3, 3, 0]);
      if (hasTool("ptxas")) expect(ptxasLog(ptx)).not.toMatch(/serialized/i);
    },
  );

  it.skipIf(llvmMissing !== "")(
    "with two x copies, waits for the previous stage's products before the barrier (the next stage writes their copy)",
    () => {
      const ptx = wgmmaPtx(WGMMA_GEMM_SCHEDULE);
      expect(ptx.match(/wgmma\.commit_group/g)?.length).toBe(4);
      expect(waits(ptx)).toEqual([0, 0]);
      const at = (re: RegExp) => ptx.search(re);
      // The stage's products run while the next stage's x is stored and its loads are issued.
      expect(at(/ld\.global\.v4/)).toBeLessThan(at(/wgmma\.wait_group/));
      expect(at(/wgmma\.wait_group/)).toBeLessThan(at(/bar\.sync/));
      expect(ptx).toMatch(/\.shared \.align 1024 \.b8 \S*xs\S*\[32768\]/);
      if (hasTool("ptxas")) expect(ptxasLog(ptx)).not.toMatch(/serialized/i);
    },
  );
});
